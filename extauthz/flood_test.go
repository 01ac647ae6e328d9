package extauthz_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/token"
)

// TestDenialFlood measures what a flood of random well-formed bad tokens costs a real daemon:
// its memory and the bytes it logs per 10,000 denials. Run by hand, not in the suite:
//
//	RILL_FLOOD_SECONDS=60 go test -run TestDenialFlood -v ./extauthz/
func TestDenialFlood(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("RILL_FLOOD_SECONDS"))
	if secs <= 0 {
		t.Skip("set RILL_FLOOD_SECONDS to run the flood")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "stderr.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// The daemon's stderr goes to a file, not to memory here, so its size is the log volume.
	cmd := exec.Command(testenv.Bin(t, "rill-authd"), "--data-dir", filepath.Join(dir, "data"),
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	started := regexp.MustCompile(`rill-authd started.*grpc_addr"?[=:]"?([^\s"]+).*http_addr"?[=:]"?([^\s"]+)`)
	var grpcAddr, httpAddr string
	for deadline := time.Now().Add(30 * time.Second); grpcAddr == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("daemon did not start")
		}
		f, _ := os.Open(logPath)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := started.FindStringSubmatch(sc.Text()); m != nil {
				grpcAddr, httpAddr = m[1], m[2]
			}
		}
		f.Close()
	}
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	const denied = `rill_authd_checks_total{kind="user",reason="unknown",result="denied"}`
	logSize := func() int64 {
		fi, err := os.Stat(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)

	rssBefore, heapBefore, logBefore := metric("process_resident_memory_bytes"), metric("go_memstats_heap_inuse_bytes"), logSize()
	var sent atomic.Int64
	var peakRSS, peakHeap float64
	stop := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				tok, err := token.New(token.User) // well-formed, checksummed, in no store
				if err != nil {
					panic(err)
				}
				resp, err := client.Check(context.Background(), envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query",
					map[string]string{"authorization": "Bearer " + tok.Encode()}, nil))
				if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
					panic("want a 401")
				}
				sent.Add(1)
			}
		})
	}
	for time.Now().Before(stop) {
		time.Sleep(time.Second)
		peakRSS, peakHeap = max(peakRSS, metric("process_resident_memory_bytes")), max(peakHeap, metric("go_memstats_heap_inuse_bytes"))
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // the last second's summary
	n := float64(sent.Load())
	counted := metric(denied)
	logBytes := float64(logSize() - logBefore)
	t.Logf("%d s flood: %.0f denials (%.0f/s), metric counted %.0f", secs, n, n/float64(secs), counted)
	t.Logf("log: %.0f bytes in all, %.0f bytes per 10,000 denials", logBytes, logBytes*10_000/n)
	t.Logf("RSS %.1f MB before, %.1f MB peak; heap in use %.1f MB before, %.1f MB peak",
		rssBefore/1e6, peakRSS/1e6, heapBefore/1e6, peakHeap/1e6)
	if counted != n {
		t.Errorf("the metric counted %.0f of %.0f denials", counted, n)
	}
}
