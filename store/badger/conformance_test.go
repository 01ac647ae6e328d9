package badger

import (
	"testing"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/storetest"
)

// TestConformance runs the engine-agnostic suite on an in-memory store, on an on-disk one (what
// production runs: every commit synced) and, for durability, on disk across reopens.
func TestConformance(t *testing.T) {
	// Imports of more than a few tokens span several transactions, so the suite's imports cover
	// the batching.
	defer func(n int) { importBatch = n }(importBatch)
	importBatch = 3
	// Purges of more than a few expired tokens scan several times.
	defer func(n int) { purgeScan = n }(purgeScan)
	purgeScan = 7

	t.Run("Memory", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, Options{InMemory: true}) })
	})
	t.Run("Disk", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, Options{Dir: t.TempDir()}) })
	})
	t.Run("Durable", func(t *testing.T) {
		storetest.RunDurable(t,
			func(t *testing.T) store.Store { return open(t, Options{Dir: t.TempDir()}) },
			func(t *testing.T, s store.Store) store.Store { return open(t, s.(*DB).opts) })
	})
}

// open opens a store the suite closes.
func open(t *testing.T, o Options) *DB {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
