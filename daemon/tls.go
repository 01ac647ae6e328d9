package daemon

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// certReloader serves TLS from files it re-reads on SIGHUP and on a change of their contents,
// polled. Each handshake reads the current *tls.Config through an atomic pointer
// (GetConfigForClient), so a reload changes what new connections see and leaves live ones be.
type certReloader struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger

	mu       sync.Mutex // one reload at a time
	loaded   [3][]byte  // the files' contents now served
	current  atomic.Pointer[tls.Config]
	requireC bool // client certificates required (a client CA file is given)
}

func newCertReloader(cfg *Config, log *slog.Logger) (*certReloader, error) {
	switch {
	case cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" && cfg.TLSClientCAFile == "":
		return nil, nil
	case cfg.TLSCertFile == "" || cfg.TLSKeyFile == "":
		return nil, errors.New("TLS: --tls-cert-file and --tls-key-file go together (--tls-client-ca-file needs both)")
	}
	r := &certReloader{certFile: cfg.TLSCertFile, keyFile: cfg.TLSKeyFile, caFile: cfg.TLSClientCAFile, log: log, requireC: cfg.TLSClientCAFile != ""}
	if _, err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload loads the files if their contents changed. On an error the previous certificate
// stays in service (a rotation that replaced the certificate but not yet the key, say).
func (r *certReloader) reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var now [3][]byte
	for i, f := range []string{r.certFile, r.keyFile, r.caFile} {
		if f == "" {
			continue
		}
		if now[i], err = os.ReadFile(f); err != nil {
			return false, fmt.Errorf("TLS: %w", err)
		}
	}
	if slices.EqualFunc(now[:], r.loaded[:], bytes.Equal) {
		return false, nil
	}
	cfg, leaf, err := r.build(now)
	if err != nil {
		return false, err
	}
	r.current.Store(cfg)
	r.loaded = now
	r.log.Info("TLS certificate loaded", "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.Text(16),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "client_certs_required", r.requireC)
	return true, nil
}

func (r *certReloader) build(files [3][]byte) (*tls.Config, *x509.Certificate, error) {
	cert, err := tls.X509KeyPair(files[0], files[1])
	if err != nil {
		return nil, nil, fmt.Errorf("TLS: --tls-cert-file %s and --tls-key-file %s: %w", r.certFile, r.keyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if r.requireC {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(files[2]) {
			return nil, nil, fmt.Errorf("TLS: --tls-client-ca-file %s holds no PEM certificate", r.caFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, cert.Leaf, nil
}

// poll reloads after a SIGHUP or every interval (0: on SIGHUP only) until done is closed. A
// failure is logged once per distinct error (and at every SIGHUP), not at every poll.
func (r *certReloader) poll(interval time.Duration, hup <-chan os.Signal, done <-chan struct{}) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	lastErr := ""
	for {
		trigger := "file change"
		select {
		case <-done:
			return
		case <-hup:
			trigger = "SIGHUP"
		case <-tick:
		}
		changed, err := r.reload()
		switch {
		case err != nil:
			if trigger == "SIGHUP" || err.Error() != lastErr {
				r.log.Error("TLS reload failed; still serving the previous certificate", "trigger", trigger, "err", err)
			}
			lastErr = err.Error()
		case changed:
			lastErr = ""
			r.log.Info("TLS certificate reloaded", "trigger", trigger)
		case trigger == "SIGHUP":
			r.log.Info("SIGHUP: TLS files unchanged")
		}
	}
}

// serverConfig is a tls.Config for a listener speaking protos (ALPN) that takes the current
// certificate and client CA at every handshake.
func (r *certReloader) serverConfig(protos ...string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := r.current.Load().Clone()
			c.NextProtos = protos
			return c, nil
		}}
}

// plaintextWarning is the start-up warning for a listener outside loopback without TLS.
func plaintextWarning(name string, addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return ""
	}
	if _, ok := addr.(*net.UnixAddr); ok {
		return "" // local to the machine; the socket's mode and group say who connects
	}
	return fmt.Sprintf("the %s listener on %s is not on loopback and has no TLS: bearer tokens cross the network in clear; set --tls-cert-file and --tls-key-file, or listen on 127.0.0.1", name, addr)
}
