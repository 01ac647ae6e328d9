package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

const tokenCols = "id, kind, owner_id, display_name, prefix, hash, created_by, created_at, expires_at, last_used_at, magic, last_used_ip, last_used_user_agent, limits, issued_by"

// scanToken reads tokenCols into t, and any columns after them into extra.
func scanToken(row pgx.Row, t *store.Token, extra ...any) error {
	var (
		id, kind          string
		hash              []byte
		created, exp, use int64
		magic, limits     *string
	)
	if err := row.Scan(append([]any{&id, &kind, &t.OwnerID, &t.DisplayName, &t.Prefix, &hash, &t.CreatedBy, &created, &exp, &use, &magic, &t.LastUsedIP, &t.LastUsedUserAgent, &limits, &t.IssuedBy}, extra...)...); err != nil {
		return err
	}
	if err := readLimits(limits, t); err != nil {
		return fmt.Errorf("token %s: %w", id, err)
	}
	if t.Magic = nil; magic != nil {
		t.Magic = new(store.Magic)
		if err := json.Unmarshal([]byte(*magic), t.Magic); err != nil {
			return fmt.Errorf("token %s: magic: %w", id, err)
		}
	}
	var err error
	if t.ID, err = token.ParseID(id); err != nil {
		return err
	}
	if len(hash) != len(t.Hash) {
		return fmt.Errorf("token %s: hash of %d bytes", t.ID, len(hash))
	}
	t.Kind = token.Kind(kind)
	copy(t.Hash[:], hash)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromNanos(created), fromNanos(exp), fromNanos(use)
	return nil
}

// magicText is the magic column of a token: its grant's JSON, NULL for no grant.
func magicText(m *store.Magic) (*string, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("magic token grant: %w", err)
	}
	s := string(b)
	return &s, nil
}

// tokenLimits is the limits column's JSON.
type tokenLimits struct {
	Networks []string `json:"allowed_networks,omitempty"`
	Origins  []string `json:"allowed_origins,omitempty"`
}

// limitsText is the limits column of a token: its constraints' JSON, NULL for none.
func limitsText(t *store.Token) *string {
	if len(t.AllowedNetworks) == 0 && len(t.AllowedOrigins) == 0 {
		return nil
	}
	b, _ := json.Marshal(tokenLimits{t.AllowedNetworks, t.AllowedOrigins}) // strings only: cannot fail
	s := string(b)
	return &s
}

// readLimits sets t's constraints from the limits column.
func readLimits(col *string, t *store.Token) error {
	t.AllowedNetworks, t.AllowedOrigins = nil, nil
	if col == nil {
		return nil
	}
	var l tokenLimits
	if err := json.Unmarshal([]byte(*col), &l); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	t.AllowedNetworks, t.AllowedOrigins = l.Networks, l.Origins
	return nil
}

// authOf is what the index holds of a token read as its check columns.
func authOf(kind, owner string, h token.Hash, expires int64, limits *string) store.TokenAuth {
	t := store.Token{Kind: token.Kind(kind), OwnerID: owner, Hash: h, ExpiresAt: fromNanos(expires)}
	if err := readLimits(limits, &t); err != nil {
		t.AllowedNetworks = []string{"unreadable"} // fails closed: Auth refuses it everywhere
	}
	return t.Auth()
}

// ownerTable is the table of a token's owner.
func ownerTable(k token.Kind) string {
	switch k {
	case token.Service:
		return "services"
	case token.Magic: // a magic token's owner is its project, by "org/name" (store.MagicOwner)
		return "(SELECT org || '/' || name AS id FROM projects) AS magic_owners"
	}
	return "users"
}

func addTokenCount(w *wtx, kind token.Kind, delta int64) error {
	return addTokenCountTx(w.ctx, w.Tx, kind, delta)
}

func addTokenCountTx(ctx context.Context, tx pgx.Tx, kind token.Kind, delta int64) error {
	if delta == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO token_counts (kind, n) VALUES ($1, greatest($2, 0))
		ON CONFLICT (kind) DO UPDATE SET n = greatest(token_counts.n + $2, 0)`, string(kind), delta)
	return err
}

func (s *DB) CreateToken(ctx context.Context, t store.Token) error {
	return s.CreateTokenCapped(ctx, t, 0)
}

// CreateTokenCapped implements store.Store: the count is read under the write lock, so two
// replicas issuing at once cannot both pass the cap. Expired tokens do not count.
func (s *DB) CreateTokenCapped(ctx context.Context, t store.Token, max int) error {
	if err := store.CheckFields("token "+t.ID.String(), t); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	err := s.write(ctx, func(w *wtx) error {
		if ok, err := exists(ctx, w, "SELECT FROM "+ownerTable(t.Kind)+" WHERE id = $1", t.OwnerID); err != nil || !ok {
			return notFoundOr(err, "token owner %s", t.OwnerID)
		}
		if max > 0 {
			var live int
			err := w.QueryRow(ctx, `SELECT count(*) FROM (SELECT FROM tokens WHERE owner_id = $1
				AND (expires_at = 0 OR expires_at > $2) LIMIT $3) x`, t.OwnerID, w.now.UnixNano(), max).Scan(&live)
			if err != nil {
				return err
			}
			if live >= max {
				return fmt.Errorf("owner %s holds %d live tokens, the most allowed: %w", t.OwnerID, max, store.ErrTooManyTokens)
			}
		}
		if ok, err := exists(ctx, w, "SELECT FROM tokens WHERE id = $1", t.ID.String()); err != nil || ok {
			return conflictOr(err, "token %s", t.ID)
		}
		if err := insertTokens(w, []store.Token{t}); err != nil {
			return err
		}
		return addTokenCount(w, t.Kind, 1)
	})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// CreateMagicTokenCapped implements store.Store: both counts are read under the write lock, in
// one bounded scan of the project's live public URLs.
func (s *DB) CreateMagicTokenCapped(ctx context.Context, t store.Token, perCreator, perProject int) error {
	if t.Kind != token.Magic {
		return fmt.Errorf("create public URL %s: a %s token: %w", t.ID, t.Kind, store.ErrInvalid)
	}
	if err := store.CheckFields("token "+t.ID.String(), t); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	err := s.write(ctx, func(w *wtx) error {
		if ok, err := exists(ctx, w, "SELECT FROM "+ownerTable(t.Kind)+" WHERE id = $1", t.OwnerID); err != nil || !ok {
			return notFoundOr(err, "token owner %s", t.OwnerID)
		}
		if perCreator > 0 || perProject > 0 {
			limit := perProject
			if limit <= 0 {
				limit = math.MaxInt32
			}
			var all, mine int
			err := w.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE created_by = $4) FROM (SELECT created_by FROM tokens
				WHERE owner_id = $1 AND (expires_at = 0 OR expires_at > $2) LIMIT $3) x`,
				t.OwnerID, w.now.UnixNano(), limit, t.CreatedBy).Scan(&all, &mine)
			if err != nil {
				return err
			}
			if perProject > 0 && all >= perProject {
				return fmt.Errorf("project %s holds %d live public URLs, the most allowed: %w", t.OwnerID, perProject, store.ErrProjectFull)
			}
			if perCreator > 0 && mine >= perCreator {
				return fmt.Errorf("%s holds %d live public URLs of project %s, the most allowed: %w", t.CreatedBy, perCreator, t.OwnerID, store.ErrTooManyTokens)
			}
		}
		if ok, err := exists(ctx, w, "SELECT FROM tokens WHERE id = $1", t.ID.String()); err != nil || ok {
			return conflictOr(err, "token %s", t.ID)
		}
		if err := insertTokens(w, []store.Token{t}); err != nil {
			return err
		}
		return addTokenCount(w, t.Kind, 1)
	})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// insertTokens writes new token records; the caller keeps the counts.
func insertTokens(w *wtx, ts []store.Token) error {
	n := len(ts)
	ids, kinds, owners, names, prefixes, by := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	hashes := make([][]byte, n)
	created, exp, used := make([]int64, n), make([]int64, n), make([]int64, n)
	magics, limits := make([]*string, n), make([]*string, n)
	ips, agents, issuers := make([]string, n), make([]string, n), make([]string, n)
	for i := range ts {
		t := &ts[i]
		var err error
		if magics[i], err = magicText(t.Magic); err != nil {
			return err
		}
		limits[i] = limitsText(t)
		ids[i], kinds[i], owners[i], names[i], prefixes[i], by[i] = t.ID.String(), string(t.Kind), t.OwnerID, t.DisplayName, t.Prefix, t.CreatedBy
		hashes[i] = t.Hash[:]
		created[i], exp[i], used[i] = nanos(t.CreatedAt), nanos(t.ExpiresAt), nanos(t.LastUsedAt)
		ips[i], agents[i], issuers[i] = t.LastUsedIP, t.LastUsedUserAgent, t.IssuedBy
	}
	_, err := w.Exec(w.ctx, "INSERT INTO tokens ("+tokenCols+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])`,
		ids, kinds, owners, names, prefixes, hashes, by, created, exp, used, magics, ips, agents, limits, issuers)
	if err != nil {
		return err
	}
	for i := range ts {
		w.tokenAdded(ts[i])
	}
	return nil
}

// deleteTokens deletes the tokens matching where (with $1 its argument) and leaves their
// tombstones saying why, in id order, keeping the counts; it returns how many it deleted.
func deleteTokens(w *wtx, where, why string, arg any) (int, error) {
	// Rows are locked in id order, as TouchTokens locks them, so the two never deadlock.
	rows, err := w.Query(w.ctx, `WITH gone AS (DELETE FROM tokens WHERE id IN (
			SELECT id FROM tokens WHERE `+where+` ORDER BY id COLLATE "C" FOR UPDATE) RETURNING id, kind),
		tomb AS (INSERT INTO tombstones (id, why, deleted_at) SELECT id, $2, $3 FROM gone
			ON CONFLICT (id) DO UPDATE SET why = excluded.why, deleted_at = excluded.deleted_at)
		SELECT id, kind FROM gone ORDER BY id COLLATE "C"`, arg, why, w.now)
	if err != nil {
		return 0, err
	}
	counts := map[token.Kind]int64{}
	var id, kind string
	n, err := pgx.ForEachRow(rows, []any{&id, &kind}, func() error {
		tid, err := token.ParseID(id)
		if err != nil {
			return err
		}
		w.tokenRemoved(tid, why)
		counts[token.Kind(kind)]++
		return nil
	})
	if err != nil {
		return 0, err
	}
	for k, c := range counts {
		if err := addTokenCount(w, k, -c); err != nil {
			return 0, err
		}
	}
	return int(n.RowsAffected()), nil
}

// importBatch bounds the records of one import transaction (a variable for tests).
var importBatch = 10_000

// ImportTokens stores many token records in few transactions: every owner is checked first,
// then the records are written in batches that each commit atomically. A failure part-way
// leaves the earlier batches in place and says how many were written.
func (s *DB) ImportTokens(ctx context.Context, ts []store.Token) error {
	for i := range ts {
		if err := store.CheckFields("token "+ts[i].ID.String(), ts[i]); err != nil {
			return fmt.Errorf("import tokens: %w", err)
		}
	}
	if err := s.closedErr(); err != nil {
		return err
	}
	if err := s.checkOwners(ctx, ts); err != nil {
		return fmt.Errorf("import tokens: %w", unavail(err))
	}
	for written := 0; written < len(ts); {
		end := min(written+importBatch, len(ts))
		batch := ts[written:end]
		err := s.write(ctx, func(w *wtx) error {
			ids := make([]string, len(batch))
			added := map[token.Kind]int64{}
			for i := range batch {
				ids[i] = batch[i].ID.String()
				added[batch[i].Kind]++
			}
			// The owners were checked before the first batch; one deleted since must not get
			// tokens (replicas dropped its tokens on its delete, and would not drop these).
			if err := ownersExist(w, batch); err != nil {
				return err
			}
			var taken string
			err := w.QueryRow(ctx, "SELECT id FROM tokens WHERE id = ANY($1) LIMIT 1", ids).Scan(&taken)
			if err == nil {
				return orConflict("token %s", taken)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if err := insertTokens(w, batch); err != nil {
				return err
			}
			for k, c := range added {
				if err := addTokenCount(w, k, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("import tokens: %d of %d written: %w", written, len(ts), err)
		}
		written = end
	}
	return nil
}

// ownersExist fails inside w unless every owner of ts exists.
func ownersExist(w *wtx, ts []store.Token) error {
	owners := map[token.Kind][]string{}
	for _, t := range ts {
		owners[t.Kind] = append(owners[t.Kind], t.OwnerID)
	}
	for k, ids := range owners {
		var missing string
		err := w.QueryRow(w.ctx, "SELECT o FROM unnest($1::text[]) o WHERE NOT EXISTS (SELECT FROM "+ownerTable(k)+" WHERE id = o) LIMIT 1", ids).Scan(&missing)
		if err == nil {
			return fmt.Errorf("token owner %s: %w", missing, store.ErrNotFound)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	return nil
}

// checkOwners fails unless every token's owner exists.
func (s *DB) checkOwners(ctx context.Context, ts []store.Token) error {
	want := map[token.Kind]map[string]bool{}
	for _, t := range ts {
		k := token.User
		if t.Kind == token.Service || t.Kind == token.Magic {
			k = t.Kind
		}
		if want[k] == nil {
			want[k] = map[string]bool{}
		}
		want[k][t.OwnerID] = true
	}
	for k, owners := range want {
		ids := make([]string, 0, len(owners))
		for id := range owners {
			ids = append(ids, id)
		}
		rows, err := s.pool.Query(ctx, "SELECT id FROM "+ownerTable(k)+" WHERE id = ANY($1)", ids)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range found {
			delete(owners, id)
		}
		for id := range owners {
			return fmt.Errorf("token owner %s: %w", id, store.ErrNotFound)
		}
	}
	return nil
}

// GetToken returns the token, or an error wrapping ErrRevoked (for a tombstoned token) or
// ErrNotFound.
func (s *DB) GetToken(ctx context.Context, id token.ID) (store.Token, error) {
	var t store.Token
	if err := s.closedErr(); err != nil {
		return t, err
	}
	// A token of an owner whose purge is not finished is revoked already.
	var purged *string
	err := scanToken(s.pool.QueryRow(ctx, "SELECT "+tokenCols+", (SELECT why FROM purges p WHERE p.owner_id = tokens.owner_id) FROM tokens WHERE id = $1", id.String()), &t, &purged)
	if err == nil && purged != nil {
		err = fmt.Errorf("%s: %w", *purged, store.ErrRevoked)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		var why string
		terr := s.pool.QueryRow(ctx, "SELECT why FROM tombstones WHERE id = $1", id.String()).Scan(&why)
		switch {
		case terr == nil:
			err = fmt.Errorf("%s: %w", why, store.ErrRevoked)
		case errors.Is(terr, pgx.ErrNoRows):
			err = store.ErrNotFound
		default:
			err = terr
		}
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("get token %s: %w", id, unavail(err))
	}
	return t, nil
}

func (s *DB) ListTokens(ctx context.Context, owner string) ([]store.Token, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT "+tokenCols+" FROM tokens WHERE owner_id = $1 AND NOT EXISTS (SELECT FROM purges WHERE owner_id = $1) ORDER BY created_at, id COLLATE \"C\"", owner)
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", owner, unavail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) {
		var t store.Token
		err := scanToken(r, &t)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", owner, unavail(err))
	}
	return out, nil
}

// ListIssuedTokens implements store.Store.
func (s *DB) ListIssuedTokens(ctx context.Context, issuer string) ([]store.Token, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	if issuer == "" {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT "+tokenCols+` FROM tokens WHERE issued_by = $1
		AND NOT EXISTS (SELECT FROM purges p WHERE p.owner_id = tokens.owner_id) ORDER BY created_at, id COLLATE "C"`, issuer)
	if err != nil {
		return nil, fmt.Errorf("list tokens issued by %s: %w", issuer, unavail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) {
		var t store.Token
		err := scanToken(r, &t)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens issued by %s: %w", issuer, unavail(err))
	}
	return out, nil
}

func (s *DB) DeleteToken(ctx context.Context, id token.ID) error {
	err := s.write(ctx, func(w *wtx) error {
		// A token of a deleted owner whose purge is not finished is revoked already.
		n, err := deleteTokens(w, "id = $1 AND NOT EXISTS (SELECT FROM purges p WHERE p.owner_id = tokens.owner_id)", "revoked", id.String())
		if err == nil && n == 0 {
			err = fmt.Errorf("token %s: %w", id, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

// SetTokenLimits implements store.Store.
func (s *DB) SetTokenLimits(ctx context.Context, id token.ID, networks, origins []string) (store.Token, error) {
	t := store.Token{ID: id, AllowedNetworks: networks, AllowedOrigins: origins}
	if err := store.CheckFields("token "+id.String(), &t); err != nil {
		return store.Token{}, fmt.Errorf("set token limits: %w", err)
	}
	err := s.write(ctx, func(w *wtx) error {
		// A token of a deleted owner whose purge is not finished is revoked already.
		var purged *string
		err := scanToken(w.QueryRow(ctx, "UPDATE tokens SET limits = $2 WHERE id = $1 RETURNING "+tokenCols+
			", (SELECT why FROM purges p WHERE p.owner_id = tokens.owner_id)", id.String(), limitsText(&t)), &t, &purged)
		if errors.Is(err, pgx.ErrNoRows) {
			var why string
			if err := w.QueryRow(ctx, "SELECT why FROM tombstones WHERE id = $1", id.String()).Scan(&why); err == nil {
				return fmt.Errorf("token %s: %s: %w", id, why, store.ErrRevoked)
			}
			return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if purged != nil {
			return fmt.Errorf("token %s: %s: %w", id, *purged, store.ErrRevoked) // rolls back
		}
		w.tokenAdded(t)
		return nil
	})
	if err != nil {
		return store.Token{}, fmt.Errorf("set token limits: %w", err)
	}
	return t, nil
}

// CountTokens returns the number of live (not deleted) tokens of each kind. Expired tokens
// count until they are revoked.
func (s *DB) CountTokens(ctx context.Context) (map[token.Kind]uint64, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	out := map[token.Kind]uint64{token.User: 0, token.Service: 0, token.Magic: 0}
	rows, err := s.pool.Query(ctx, "SELECT kind, n FROM token_counts")
	if err != nil {
		return nil, fmt.Errorf("count tokens: %w", unavail(err))
	}
	var (
		kind string
		n    int64
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &n}, func() error {
		out[token.Kind(kind)] = uint64(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count tokens: %w", unavail(err))
	}
	return out, nil
}

// TokenAuth returns what a check needs of a token from memory, never querying PostgreSQL (see
// the package comment): a live token from the index, a revoked one from the tombstones, and
// anything else is ErrNotFound.
func (s *DB) TokenAuth(_ context.Context, id token.ID) (store.TokenAuth, error) {
	if t, ok := s.idx.Load().Get(id); ok {
		return t, nil
	}
	if why, ok := s.dead.Load().get(id); ok {
		return store.TokenAuth{}, fmt.Errorf("get token %s: %s: %w", id, why, store.ErrRevoked)
	}
	return store.TokenAuth{}, fmt.Errorf("get token %s: %w", id, store.ErrNotFound)
}

// TouchTokens records last-used times, never moving one back; it is not in the feed.
func (s *DB) TouchTokens(ctx context.Context, used map[token.ID]time.Time) error {
	uses := make(map[token.ID]store.TokenUse, len(used))
	for id, at := range used {
		uses[id] = store.TokenUse{At: at}
	}
	return s.RecordUses(ctx, uses)
}

// RecordUses records last uses and where they came from, never moving one back; it is not in
// the feed. A use that does not say where leaves the recorded address and user agent.
func (s *DB) RecordUses(ctx context.Context, uses map[token.ID]store.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	if err := s.closedErr(); err != nil {
		return err
	}
	n := len(uses)
	ids, ats, where, ips, agents := make([]string, 0, n), make([]int64, 0, n), make([]bool, 0, n), make([]string, 0, n), make([]string, 0, n)
	for id, u := range uses {
		w := u.HasWhere()
		u = u.Clean()
		ids, ats, where = append(ids, id.String()), append(ats, nanos(u.At)), append(where, w)
		ips, agents = append(ips, u.IP), append(agents, u.UserAgent)
	}
	// Rows are locked in id order, as deletes lock them, so a touch racing a cascade never
	// deadlocks; a touch of a token deleted meanwhile changes nothing.
	_, err := s.pool.Exec(ctx, `UPDATE tokens t SET last_used_at = u.at,
			last_used_ip = CASE WHEN u.w THEN u.ip ELSE t.last_used_ip END,
			last_used_user_agent = CASE WHEN u.w THEN u.ua ELSE t.last_used_user_agent END
		FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::text[], $5::text[]) AS u(id, at, w, ip, ua)
		WHERE t.id = u.id AND u.at > t.last_used_at
			AND t.id IN (SELECT id FROM tokens WHERE id = ANY($1) ORDER BY id COLLATE "C" FOR UPDATE)`, ids, ats, where, ips, agents)
	if err != nil {
		return fmt.Errorf("record token uses: %w", unavail(err))
	}
	return nil
}
