package testenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// PGProxy passes TCP connections through to a PostgreSQL server and can cut some of them off,
// as a network fault would: Block closes the connections whose application_name contains a
// string (read from the startup message, sent in the clear with sslmode=disable) and refuses
// new ones until Unblock. Everything else passes byte for byte, so a replica can lose its change
// feed while its pool still reaches PostgreSQL.
type PGProxy struct {
	Addr   string
	target string
	lis    net.Listener

	mu      sync.Mutex
	blocked string
	conns   map[net.Conn]string // client side -> application_name
	refused int
	wg      sync.WaitGroup
}

// StartPGProxy listens on 127.0.0.1 port 0 and forwards to target (host:port) until the test
// ends.
func StartPGProxy(t testing.TB, target string) *PGProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &PGProxy{Addr: lis.Addr().String(), target: target, lis: lis, conns: map[net.Conn]string{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		lis.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// ProxiedURL is dbURL with its host and port replaced by the proxy's.
func (p *PGProxy) ProxiedURL(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.Addr
	return u.String()
}

// Block cuts the connections whose application_name contains app and refuses new ones; it
// says how many it cut.
func (p *PGProxy) Block(app string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = app
	n := 0
	for c, name := range p.conns {
		if strings.Contains(name, app) {
			c.Close()
			n++
		}
	}
	return n
}

// Unblock lets every connection through again.
func (p *PGProxy) Unblock() {
	p.mu.Lock()
	p.blocked = ""
	p.mu.Unlock()
}

// Refused is how many connections Block refused at their startup.
func (p *PGProxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *PGProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// Protocol codes of the requests a client may send before its startup message.
const (
	sslRequest    = 80877103
	gssEncRequest = 80877104
)

func (p *PGProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var app string
	for {
		msg, err := readStartup(c)
		if err != nil {
			return
		}
		if _, err := s.Write(msg); err != nil {
			return
		}
		code := binary.BigEndian.Uint32(msg[4:8])
		if code != sslRequest && code != gssEncRequest {
			app = startupParam(msg[8:], "application_name")
			break
		}
		// The server answers S or N in one byte (N: the URL says sslmode=disable anyway).
		b := make([]byte, 1)
		if _, err := io.ReadFull(s, b); err != nil {
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
		if b[0] != 'N' {
			return // TLS: this proxy cannot read the startup message then
		}
	}
	p.mu.Lock()
	if p.blocked != "" && strings.Contains(app, p.blocked) {
		p.refused++
		p.mu.Unlock()
		return
	}
	p.conns[c] = app
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); s.Close(); done <- struct{}{} }()
	go func() { io.Copy(c, s); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// readStartup reads one length-prefixed message of the startup phase (no type byte).
func readStartup(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 8 || n > 10_000 {
		return nil, errors.New("not a PostgreSQL startup message")
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// startupParam finds key in a startup message's NUL-separated key/value pairs.
func startupParam(b []byte, key string) string {
	parts := bytes.Split(b, []byte{0})
	for i := 0; i+1 < len(parts); i += 2 {
		if string(parts[i]) == key {
			return string(parts[i+1])
		}
	}
	return ""
}

// String is the proxy's state, for messages.
func (p *PGProxy) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("proxy %s -> %s: %d connections, blocking %q, %d refused", p.Addr, p.target, len(p.conns), p.blocked, p.refused)
}
