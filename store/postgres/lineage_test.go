package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestFeedThatLostWrites: a failover to a standby that had not received the last write
// (asynchronous replication) leaves the database's feed behind what the replicas applied, and
// once writes resume there the same sequence numbers name other changes. Simulated on one
// database: a write is taken back as the failover would lose it (its token, its changes, the
// sequence), then every connection is cut, as the failover cuts them. Each replica must notice
// on reconnecting and reload: the lost token unknown, a write made since known. Before, both
// kept the lost token, and a write that reused its sequence was never learnt.
func TestFeedThatLostWrites(t *testing.T) {
	url := newDatabase(t)
	a, b := openDB(t, url), openDB(t, url)
	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := a.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	// loseWrite creates a token through A, waits until B has it, then takes the write back.
	loseWrite := func() token.Token {
		t.Helper()
		before, err := a.LastSeq(ctx)
		must(t, err)
		tk, raw := newToken(t, token.User, "u1")
		must(t, a.CreateToken(ctx, tk))
		eventually(t, time.Second, "B knows the token", func() bool { _, err := b.TokenAuth(ctx, raw.ID); return err == nil })
		exec("DELETE FROM tokens WHERE id = $1", tk.ID.String())
		exec("UPDATE token_counts SET n = n - 1 WHERE kind = 'usr'")
		exec("DELETE FROM changes WHERE seq > $1", int64(before))
		exec("UPDATE feed_state SET last_seq = $1", int64(before))
		return raw
	}
	failover := func() {
		t.Helper()
		pa, pb := a.listenPID.Load(), b.listenPID.Load()
		exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
		eventually(t, 5*time.Second, "both reconnect", func() bool { return a.listenPID.Load() != pa && b.listenPID.Load() != pb })
	}
	gone := func(what string, raw token.Token) {
		t.Helper()
		for name, r := range map[string]*DB{"A": a, "B": b} {
			eventually(t, 5*time.Second, name+" forgets "+what, func() bool {
				_, err := r.TokenAuth(ctx, raw.ID)
				return errors.Is(err, store.ErrNotFound)
			})
		}
	}

	// The feed ends before what the replicas applied.
	lost := loseWrite()
	failover()
	gone("a token the database lost", lost)

	// Writes resumed on the database first, through a replica that started after the loss: its
	// write takes the lost write's sequence.
	lost = loseWrite()
	c := openDB(t, url)
	fresh, freshRaw := newToken(t, token.User, "u1")
	must(t, c.CreateToken(ctx, fresh))
	failover()
	gone("a token the database lost, its sequence reused", lost)
	for name, r := range map[string]*DB{"A": a, "B": b} {
		eventually(t, 5*time.Second, name+" learns the write that reused the sequence", func() bool {
			_, err := r.TokenAuth(ctx, freshRaw.ID)
			return err == nil
		})
	}
}
