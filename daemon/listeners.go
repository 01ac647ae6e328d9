package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// File descriptors are shared by both listeners and the store: an HTTP client that holds
// connections must not leave the check port unable to accept. The HTTP port may hold
//
//	min((RLIMIT_NOFILE - fdReserve) / 2, httpConnCap), and at least httpConnFloor
//
// connections: fdReserve descriptors stay for the process itself (stdio, the listeners, the
// store's tables, value logs and manifest, plugin pipes, the runtime's poller) and half of the
// rest for the gRPC check port.
const (
	fdReserve     = 128
	httpConnFloor = 16
	httpConnCap   = 16384
)

// httpConnLimit is the bound on open HTTP connections for a process allowed nofile
// descriptors.
func httpConnLimit(nofile uint64) int {
	if nofile <= fdReserve+2*httpConnFloor {
		return httpConnFloor
	}
	return int(min((nofile-fdReserve)/2, httpConnCap))
}

// grpcHandshakeTimeout bounds how long a connection to the check port may take to send its
// HTTP/2 preface (and finish its TLS handshake) before it is closed.
const grpcHandshakeTimeout = 10 * time.Second

// grpcOptions bound what a connection to the check port may hold (streams at once, time idle,
// ping rate, time to handshake) and put it on TLS when asked.
func (d *Daemon) grpcOptions() []grpc.ServerOption {
	c := &d.cfg
	opts := []grpc.ServerOption{
		grpc.MaxConcurrentStreams(c.GRPCMaxConcurrentStreams),
		// Envoy may ping an idle pooled connection; pings never count as activity for
		// MaxConnectionIdle, so allowing them without a stream keeps nothing open longer.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: c.GRPCKeepaliveMinTime, PermitWithoutStream: true}),
		// Time/Timeout: a peer that vanished without a FIN is found and closed within 80 s.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: c.GRPCMaxConnectionIdle, Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.ConnectionTimeout(grpcHandshakeTimeout),
	}
	if c.tlsOn("grpc") {
		opts = append(opts, grpc.Creds(credentials.NewTLS(d.tls.serverConfig("h2"))))
	}
	return opts
}

// newHTTPServer makes d.http with its timeouts and its bound on open connections, and returns
// the listener to serve it on (TLS over the bound when asked).
func (d *Daemon) newHTTPServer(h http.Handler) net.Listener {
	cfg := &d.cfg
	nofile, nerr := openFileLimit()
	maxConns, from := describeLimit(cfg.HTTPMaxConns, nofile, nerr)
	d.httpConns = newConnLimiter(d.httpLis, maxConns, func(total uint64) {
		d.log.Warn("HTTP connection limit reached: closing the oldest idle or slow connections to take new ones",
			"limit", maxConns, "closed_total", total)
	})
	d.log.Info("HTTP connections limited", "max", maxConns, "from", from)
	if nerr == nil && cfg.HTTPMaxConns > 0 && uint64(cfg.HTTPMaxConns)+fdReserve/2 > nofile {
		d.log.Warn("--http-max-conns leaves the check port and the store too few file descriptors", "http_max_conns", cfg.HTTPMaxConns, "rlimit_nofile", nofile)
	}
	d.metrics.GaugeFunc("rill_authd_http_connections", "HTTP connections open.", nil, func() float64 { return float64(d.httpConns.Open()) })
	d.metrics.GaugeFunc("rill_authd_http_connections_max", "Most HTTP connections held open (--http-max-conns).", nil, func() float64 { return float64(maxConns) })
	d.metrics.CounterFunc("rill_authd_http_connections_shed_total", "Idle or slow HTTP connections closed to make room at the limit.", func() float64 { return float64(d.httpConns.shed.Load()) })
	d.http = &http.Server{Handler: h, ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout, ReadTimeout: cfg.HTTPReadTimeout,
		WriteTimeout: cfg.HTTPWriteTimeout, IdleTimeout: cfg.HTTPIdleTimeout, ConnState: d.httpConns.ConnState,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	if !cfg.tlsOn("http") {
		return d.httpConns
	}
	// HTTP/1.1 only: every client of this port (rillctl, Envoy's http_service, nginx) speaks it.
	return tls.NewListener(d.httpConns, d.tls.serverConfig("http/1.1"))
}

// warnPlaintext warns of a listener off loopback without TLS.
func (d *Daemon) warnPlaintext() {
	for _, l := range []struct {
		flag, name string
		lis        net.Listener
	}{{"grpc", "gRPC", d.grpcLis}, {"http", "HTTP", d.httpLis}} {
		if w := plaintextWarning(l.name, l.lis.Addr()); w != "" && !d.cfg.tlsOn(l.flag) {
			d.log.Warn(w)
		}
	}
}

// handleSIGHUP reloads the configuration (reload.go) and the TLS files (which are also
// polled) on SIGHUP, one SIGHUP at a time.
func (d *Daemon) handleSIGHUP() {
	d.hup, d.stopHUP, d.hupDone = make(chan os.Signal, 1), make(chan struct{}), make(chan struct{})
	signal.Notify(d.hup, syscall.SIGHUP)
	var tlsHUP chan os.Signal
	if d.tls != nil {
		tlsHUP = make(chan os.Signal, 1)
		go d.tls.poll(d.cfg.TLSReloadInterval, tlsHUP, d.stopHUP)
	}
	go func() {
		defer close(d.hupDone)
		for {
			select {
			case sig := <-d.hup:
				d.reload()
				if tlsHUP != nil {
					select {
					case tlsHUP <- sig:
					default: // one is pending already
					}
				}
			case <-d.stopHUP:
				return
			}
		}
	}()
}

// stopSIGHUP stops taking SIGHUP and waits for a reload under way, which uses what Shutdown
// is about to close.
func (d *Daemon) stopSIGHUP() {
	if d.hup != nil {
		signal.Stop(d.hup)
		close(d.stopHUP)
		<-d.hupDone
		d.hup = nil
	}
}

// connLimiter caps the connections an http.Server holds open. At the cap a new connection
// takes the place of the oldest one that is idle (keep-alive) or has not yet sent a whole
// request (slow or silent clients), as nginx reuses keep-alive connections when it runs out:
// a client that sends its request promptly is served however many connections others hold.
// Only when every connection is busy with a request does Accept wait for one to finish (the
// read and write timeouts bound that); meanwhile new connections wait in the kernel's backlog
// and use no descriptor of ours.
type connLimiter struct {
	net.Listener
	max int

	mu      sync.Mutex
	conns   map[*limitedConn]struct{}
	changed chan struct{} // a connection closed or went idle: Accept may go on
	done    chan struct{}
	once    sync.Once

	shed    atomic.Uint64
	lastLog atomic.Int64 // unix nanos of the last "limit reached" log
	onShed  func(total uint64)
}

type limitedConn struct {
	net.Conn
	l     *connLimiter
	once  sync.Once
	state http.ConnState // under l.mu
	since time.Time      // under l.mu: when it entered state
}

func newConnLimiter(inner net.Listener, max int, onShed func(total uint64)) *connLimiter {
	return &connLimiter{Listener: inner, max: max, conns: map[*limitedConn]struct{}{},
		changed: make(chan struct{}, 1), done: make(chan struct{}), onShed: onShed}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &limitedConn{Conn: c, l: l, state: http.StateNew, since: time.Now()}
	for {
		l.mu.Lock()
		if len(l.conns) < l.max {
			l.conns[lc] = struct{}{}
			l.mu.Unlock()
			return lc, nil
		}
		victim := l.oldestUnbusy()
		l.mu.Unlock()
		if victim != nil {
			victim.Close()
			n := l.shed.Add(1)
			// Logged at most every 10 s: an attack must not also flood the log.
			if now := time.Now().UnixNano(); now-l.lastLog.Load() > int64(10*time.Second) && l.onShed != nil {
				l.lastLog.Store(now)
				l.onShed(n)
			}
			continue
		}
		select {
		case <-l.changed:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// oldestUnbusy is the connection that has been idle or without a whole request the longest.
func (l *connLimiter) oldestUnbusy() *limitedConn {
	var v *limitedConn
	for c := range l.conns {
		if (c.state == http.StateNew || c.state == http.StateIdle) && (v == nil || c.since.Before(v.since)) {
			v = c
		}
	}
	return v
}

func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open is the number of connections held.
func (l *connLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// ConnState is the http.Server hook that tells the limiter which connections are busy.
func (l *connLimiter) ConnState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	lc.state, lc.since = s, time.Now()
	l.mu.Unlock()
	if s == http.StateIdle {
		l.signal()
	}
}

func (l *connLimiter) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.signal()
	})
	return c.Conn.Close()
}

// describeLimit says where the HTTP connection bound came from, for the start log.
func describeLimit(flag int, nofile uint64, err error) (int, string) {
	switch {
	case flag > 0:
		return flag, "--http-max-conns"
	case err != nil:
		return httpConnFloor * 64, fmt.Sprintf("default (open-file limit unknown: %v)", err)
	default:
		return httpConnLimit(nofile), fmt.Sprintf("(RLIMIT_NOFILE %d - %d) / 2", nofile, fdReserve)
	}
}
