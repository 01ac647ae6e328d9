package postgres

import (
	"net"
	"strings"
	"testing"
)

// TestOpenNamesEveryHost: a multi-host URL whose hosts all refuse is unavailable, and the error
// says which database on which hosts it could not open (all of them, with their ports), never
// the password.
func TestOpenNamesEveryHost(t *testing.T) {
	var addrs []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		addrs = append(addrs, l.Addr().String())
		l.Close() // nothing listens there now
	}
	_, err := Open(ctx, Options{URL: "postgres://u:secret-password@" + strings.Join(addrs, ",") + "/x?sslmode=disable&connect_timeout=2"})
	if err == nil || !Unavailable(err) {
		t.Fatalf("open with no server: %v, want Unavailable", err)
	}
	if want := "open postgres store on " + strings.Join(addrs, ",") + "/x: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start %q", err, want)
	}
	if strings.Contains(err.Error(), "secret-password") {
		t.Fatalf("the error shows the password: %v", err)
	}
}
