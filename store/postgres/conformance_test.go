package postgres

import (
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/storetest"
)

// TestConformance runs the engine-agnostic suite, each store on a database of its own, and, for
// durability, across reopens of one database.
func TestConformance(t *testing.T) {
	testenv.PostgresServer(t) // skip (or fail in CI) before the suite opens anything
	// Imports of more than a few tokens span several transactions, so the suite's imports cover
	// the batching.
	defer func(n int) { importBatch = n }(importBatch)
	importBatch = 3

	storetest.Run(t, func(t *testing.T) store.Store { return openForSuite(t, newDatabase(t)) })
	t.Run("Durable", func(t *testing.T) {
		storetest.RunDurable(t,
			func(t *testing.T) store.Store { return openForSuite(t, newDatabase(t)) },
			func(t *testing.T, s store.Store) store.Store { return openForSuite(t, s.(*DB).opts.URL) })
	})
}

// openForSuite opens a store the suite closes.
func openForSuite(t *testing.T, url string) *DB {
	t.Helper()
	s, err := Open(ctx, Options{URL: url, PollInterval: 200 * 1e6, MaintainInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
