package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = Open(c, Options{URL: "postgres://nobody:secret-password@" + addr + "/x?sslmode=disable&connect_timeout=2"})
	if err == nil || !Unavailable(err) {
		t.Fatalf("open with no server: %v, want Unavailable", err)
	}
	if s := err.Error(); contains(s, "secret-password") {
		t.Fatalf("the error shows the password: %s", s)
	}
	for _, e := range []error{store.ErrConflict, store.ErrNotFound, fmt.Errorf("x: %w", store.ErrRevoked), errors.New("boom")} {
		if Unavailable(e) {
			t.Errorf("Unavailable(%v) = true", e)
		}
	}
	if _, err := Open(ctx, Options{URL: "postgres://u:secret-password@[::1"}); err == nil || contains(err.Error(), "secret-password") {
		t.Fatalf("a URL that does not parse: %v", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
