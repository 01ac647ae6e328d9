package badger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	// Counts are the restored store's records per kind, as copy-store reports them.
	Counts []store.KindCount
}

// bitDelete is Badger's meta bit of a delete marker (badger/v4 structs.go), as a backup holds it.
const bitDelete = 1 << 0

// maxFrame bounds one record list of a backup; Badger writes lists of a few MiB.
const maxFrame = 1 << 30

// Restore loads the backup in the file from into the store o describes, which must be empty
// unless force is set (then it is replaced). Nothing of the working store is touched until the
// new one is known good:
//
//  1. the file is read whole and every record in it checked (framing, and each record decodes
//     and holds only text every engine can store), so a truncated, foreign or corrupt backup
//     changes nothing;
//  2. the backup is loaded into a new directory beside o.Dir, and opened as the daemon will
//     open it (the token index rebuilt);
//  3. only then the two directories are swapped in one rename (RENAME_EXCHANGE on Linux; two
//     renames elsewhere), and the old store is deleted.
//
// A crash at any point leaves the old store or the new one whole at o.Dir. The store must not
// be open elsewhere: Badger's directory lock refuses it.
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
		return stats, fmt.Errorf("restore: backup %s: %w; the store was not touched", from, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	target := filepath.Clean(o.Dir)
	exists, err := checkTarget(o, target, force)
	if err != nil {
		return stats, err
	}
	if exists {
		unlock, err := lockDir(target)
		if err != nil {
			return stats, fmt.Errorf("restore: %w", err)
		}
		defer unlock()
	}

	// Build the new store aside, on the same file system, so that it can be renamed in.
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return stats, fmt.Errorf("restore: %w", err)
	}
	aside, err := os.MkdirTemp(filepath.Dir(target), "."+filepath.Base(target)+".restore-")
	if err != nil {
		return stats, fmt.Errorf("restore: make a directory beside %s for the new store: %w", target, err)
	}
	keepAside := false
	defer func() {
		if !keepAside {
			os.RemoveAll(aside)
		}
	}()
	ao := o
	ao.Dir = aside
	if err := loadInto(ao, f); err != nil {
		return stats, fmt.Errorf("restore: %w; the store in %s was not touched", err, target)
	}
	if err := openedStats(ao, &stats); err != nil {
		return stats, fmt.Errorf("restore: the restored store does not open: %w; the store in %s was not touched", err, target)
	}

	// Swap it in.
	if !exists {
		if err := os.Rename(aside, target); err != nil {
			return stats, fmt.Errorf("restore: move the restored store to %s: %w", target, err)
		}
		return stats, syncDir(filepath.Dir(target))
	}
	switch err := exchange(aside, target); {
	case err == nil:
	case errors.Is(err, errors.ErrUnsupported):
		if err := swapByRenames(aside, target); err != nil {
			keepAside = true
			return stats, err
		}
	default:
		keepAside = true // e.g. a mount point: the restored store stays for the operator to move
		return stats, fmt.Errorf("restore: swap the restored store (in %s) with %s: %w; the store in %s was not touched; "+
			"stop, move it into place by hand, or point --data-dir at it", aside, target, err, target)
	}
	// The deferred RemoveAll deletes the old store, now at aside.
	return stats, syncDir(filepath.Dir(target))
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("restore: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("restore: sync %s: %w", dir, err)
	}
	return nil
}

// checkTarget refuses a target that holds data unless force, and reports whether it exists.
func checkTarget(o Options, target string, force bool) (bool, error) {
	entries, err := os.ReadDir(target)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	if len(entries) == 0 || force {
		return true, nil
	}
	bo, err := badgerOptions(o)
	if err != nil {
		return false, err
	}
	db, err := bdg.Open(bo)
	if err != nil {
		return false, fmt.Errorf("restore: open store in %q (is rill-authd running on it? stop it first): %w", target, err)
	}
	defer db.Close()
	empty := true
	err = db.View(func(txn *bdg.Txn) error {
		it := txn.NewIterator(bdg.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("restore: %w", err)
	}
	if !empty {
		return false, fmt.Errorf("restore into %q: %w: a restore goes into an empty data dir (or pass --force to replace everything in it with the backup)", target, ErrNotEmpty)
	}
	return true, nil
}

// loadInto loads the backup r into a new store at o.Dir.
func loadInto(o Options, r io.Reader) error {
	bo, err := badgerOptions(o)
	if err != nil {
		return err
	}
	db, err := bdg.Open(bo)
	if err != nil {
		return fmt.Errorf("open the new store: %w", err)
	}
	if err := db.Load(r, 16); err != nil {
		db.Close()
		return fmt.Errorf("load backup: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close the new store: %w", err)
	}
	return nil
}

// openedStats opens the store at o.Dir as the daemon will and says what it holds.
func openedStats(o Options, stats *RestoreStats) error {
	s, err := Open(o)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	snap, err := store.Dump(ctx, s)
	if err != nil {
		return err
	}
	if err := snap.Validate(); err != nil {
		return err
	}
	if stats.Tokens, err = s.CountTokens(ctx); err != nil {
		return err
	}
	stats.Orgs, stats.Users, stats.SigningKeys, stats.LastSeq = len(snap.Orgs), len(snap.Users), len(snap.SigningKeys), s.seq.Load()
	stats.Counts = snap.Counts()
	return s.Close()
}

// swapByRenames replaces target with aside where the two cannot be exchanged in one step: the
// old store is renamed away first, so a crash between the two renames leaves both whole (the
// old one under the name the error gives).
func swapByRenames(aside, target string) error {
	old := aside + ".old"
	if err := os.Rename(target, old); err != nil {
		return fmt.Errorf("restore: move the old store aside: %w; the store in %s was not touched (the restored one is in %s)", err, target, aside)
	}
	if err := os.Rename(aside, target); err != nil {
		if rerr := os.Rename(old, target); rerr != nil {
			return fmt.Errorf("restore: move the restored store in: %w; the old store is whole in %s, the restored one in %s", err, old, aside)
		}
		return fmt.Errorf("restore: move the restored store in: %w; the old store is back in %s (the restored one is in %s)", err, target, aside)
	}
	if err := os.Rename(old, aside); err != nil { // so that the deferred RemoveAll finds it
		os.RemoveAll(old)
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
	var bad []string
	var lastKey []byte
	now := uint64(time.Now().Unix())
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
			// Only the newest version of a key is read; a delete marker or an expired entry
			// holds no record.
			newest := !bytes.Equal(kv.Key, lastKey)
			lastKey = append(lastKey[:0], kv.Key...)
			if !newest || len(kv.Meta) > 0 && kv.Meta[0]&bitDelete != 0 || kv.ExpiresAt > 0 && kv.ExpiresAt <= now {
				continue
			}
			if err := checkRecord(kv.Key, kv.Value); err != nil && len(bad) < 20 {
				bad = append(bad, err.Error())
			}
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
	if len(bad) > 0 {
		return 0, fmt.Errorf("records that would leave a store the daemon cannot open or copy:\n  %s", strings.Join(bad, "\n  "))
	}
	return keys, nil
}
