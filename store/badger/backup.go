package badger

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Backup writes a consistent snapshot of the whole store to w in Badger's backup format (what
// DB.Load and Restore read) while the store keeps serving, and returns the newest version it
// holds. The backup is not encrypted, even when the store is: it holds the signing keys.
func (s *DB) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	if s.db.IsClosed() {
		return 0, store.ErrClosed
	}
	st := s.db.NewStream()
	st.LogPrefix = "rill-authd backup"
	// Each of a stream's goroutines reads in a transaction of its own; with one, the whole
	// backup reads one snapshot, so no write is half in it (a token without its count, say).
	st.NumGo = 1
	version, err := st.Backup(ctxWriter{ctx, w}, 0)
	if err != nil {
		if errors.Is(err, bdg.ErrDBClosed) {
			err = store.ErrClosed
		}
		return 0, fmt.Errorf("back up store: %w", err)
	}
	return version, nil
}

// ctxWriter stops a backup once its context ends (the client went away).
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ErrNotEmpty is returned by Restore into a store that already holds data.
var ErrNotEmpty = errors.New("the store is not empty")

// RestoreStats describes a restored store, as it opens.
type RestoreStats struct {
	Keys        int // records and index entries in the backup
	Orgs, Users int
	Tokens      map[token.Kind]uint64
	SigningKeys int
	LastSeq     uint64
}

// maxFrame bounds one record list of a backup; Badger writes lists of a few MiB.
const maxFrame = 1 << 30

// Restore loads the backup in the file from into the store o describes, which must be empty
// unless force is set (then its contents are dropped first). The file is checked whole before
// anything is written, so a truncated or foreign file changes nothing. The store must not be
// open elsewhere (Badger's directory lock refuses it). It then opens the store, as the daemon
// will, which rebuilds the token index, and reports what it holds.
func Restore(o Options, from string, force bool) (RestoreStats, error) {
	var stats RestoreStats
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.Open(from)
	if err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if stats.Keys, err = checkBackup(f); err != nil {
		return stats, fmt.Errorf("restore: backup %s: %w", from, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}

	bo, err := badgerOptions(o)
	if err != nil {
		return stats, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return stats, fmt.Errorf("restore: create data dir: %w", err)
	}
	db, err := bdg.Open(bo)
	if err != nil {
		return stats, fmt.Errorf("restore: open store in %q (is rill-authd running on it? stop it first): %w", o.Dir, err)
	}
	if err := load(db, f, force); err != nil {
		db.Close()
		return stats, fmt.Errorf("restore into %q: %w", o.Dir, err)
	}
	if err := db.Close(); err != nil {
		return stats, fmt.Errorf("restore: close store: %w", err)
	}

	s, err := Open(o)
	if err != nil {
		return stats, fmt.Errorf("restore: reopen: %w", err)
	}
	defer s.Close()
	ctx := context.Background()
	orgs, err := s.ListOrgs(ctx)
	if err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	ks, err := s.ListSigningKeys(ctx)
	if err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	if stats.Tokens, err = s.CountTokens(ctx); err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	stats.Orgs, stats.Users, stats.SigningKeys, stats.LastSeq = len(orgs), len(users), len(ks), s.seq.Load()
	return stats, nil
}

// load refuses a store with data unless force, then loads the backup r into it.
func load(db *bdg.DB, r io.Reader, force bool) error {
	empty := true
	err := db.View(func(txn *bdg.Txn) error {
		it := txn.NewIterator(bdg.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if err != nil {
		return err
	}
	if !empty {
		if !force {
			return fmt.Errorf("%w: a restore goes into an empty data dir (or pass --force to replace everything in it with the backup)", ErrNotEmpty)
		}
		if err := db.DropAll(); err != nil {
			return fmt.Errorf("drop the store's contents: %w", err)
		}
	}
	if err := db.Load(r, 16); err != nil {
		return fmt.Errorf("load backup (the store now holds part of it: restore again with --force): %w", err)
	}
	return nil
}

// checkBackup reads a whole backup, checking every frame is complete and parses, and that it
// is a rill-authd store's (it has the bootstrap mark); it returns how many entries it holds.
func checkBackup(f *os.File) (int, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	left := fi.Size()
	br := bufio.NewReaderSize(f, 1<<20)
	var buf []byte
	keys, ours := 0, false
	for at := int64(0); left > 0; {
		if left < 8 {
			return 0, fmt.Errorf("truncated: %d stray bytes at the end (byte %d)", left, at)
		}
		var n uint64
		if err := binary.Read(br, binary.LittleEndian, &n); err != nil {
			return 0, fmt.Errorf("read at byte %d: %w", at, err)
		}
		left -= 8
		if n > uint64(left) || n > maxFrame {
			return 0, fmt.Errorf("truncated or not a backup: the part at byte %d claims %d bytes, %d are left", at, n, left)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return 0, fmt.Errorf("read at byte %d: %w", at+8, err)
		}
		var list pb.KVList
		if err := proto.Unmarshal(buf[:n], &list); err != nil {
			return 0, fmt.Errorf("not a backup: the part at byte %d does not parse: %w", at, err)
		}
		for _, kv := range list.Kv {
			keys++
			ours = ours || string(kv.Key) == kBoot
		}
		left -= int64(n)
		at += 8 + int64(n)
	}
	if keys == 0 {
		return 0, errors.New("it is empty")
	}
	if !ours {
		return 0, errors.New("not a rill-authd backup: it has no bootstrap mark (" + kBoot + ")")
	}
	return keys, nil
}
