package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rill-authd/rill-authd/store"
)

// Unavailable reports whether err means PostgreSQL could not be reached or the connection was
// lost (not that the request was wrong), so the daemon can answer 503 and the client retry. A
// write that fails this way at commit may still have committed; the feed tells every replica
// either way.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57P01-57P03: shutdown, crash, cannot connect now; 53: out
		// of resources (too many connections); 25006: read-only transaction (a connection that
		// reached a standby or a demoted primary: the primary is elsewhere, retry).
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "53") || pe.Code == "25006"
	}
	return strings.Contains(err.Error(), "conn closed")
}

// unavail wraps err with store.ErrUnavailable when it says PostgreSQL could not be reached, so
// callers outside this package can answer 503 without knowing the engine.
func unavail(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) || !Unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}
