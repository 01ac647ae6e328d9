// Package skipdemo is a test of `make unit`'s skip report (internal/testenv/skip_test.go): its
// one test needs PostgreSQL, which that test withholds.
package skipdemo

import (
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

func TestNeedsPostgres(t *testing.T) {
	testenv.PostgresServer(t)
}
