// Package resolver turns a bearer credential into a policy.Principal: it parses the token,
// consults a bounded cache, and on a miss reads the token and its owner from the store. It is
// shared by the check path (extauthz) and the admin API so that both authenticate alike.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Reasons a credential is refused. They are sentinels (or token's) so the hot path does not
// allocate and callers can report an exact reason; none of them contains the credential.
var (
	ErrMissing      = errors.New("missing bearer token")
	ErrNotBearer    = errors.New("authorization scheme is not Bearer")
	ErrUnknown      = errors.New("unknown token")
	ErrExpired      = errors.New("token expired")
	ErrRevoked      = errors.New("token revoked")
	ErrOwnerGone    = errors.New("token owner no longer exists")
	ErrNotRillToken = errors.New("not a rill token or JWT")
	ErrIssuerGone   = errors.New("the service or user that issued this token no longer exists")
	ErrIssuerAccess = errors.New("the issuer of this token no longer has manage_prod on its project")
	// ErrMagicRules refuses a public URL whose stored rules cannot be built (an imported one
	// Rill accepted and we cannot encode): a refusal of that token, not an outage.
	ErrMagicRules = errors.New("this public URL's access rules are invalid")
)

// AuthErrors are all the sentinel refusals.
var AuthErrors = []error{ErrMissing, ErrNotBearer, ErrUnknown, ErrExpired, ErrRevoked, ErrOwnerGone,
	ErrNotRillToken, ErrJWTScope, ErrIssuerGone, ErrIssuerAccess, ErrMagicRules, token.ErrWrongPrefix, token.ErrUnknownType,
	token.ErrBadLength, token.ErrBadCharacter, token.ErrBadChecksum, token.ErrBadPayload, token.ErrJWTMalformed, token.ErrJWTAlg,
	token.ErrJWTUnknownKey, token.ErrJWTSignature, token.ErrJWTExpired, token.ErrJWTNotYet, token.ErrJWTIssuer,
	token.ErrJWTAudience}

// IsAuthError reports whether err is a refusal of the credential (401) rather than a failure
// of the daemon (500).
func IsAuthError(err error) bool {
	for _, e := range AuthErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Options configures a Resolver.
type Options struct {
	CacheSize int // principals kept; default 100,000; negative disables the cache (benchmarks)
	// OnRefused, when set, is given the tokens refused for where they were used since the last
	// flush (the last refusal of each), from the background writer, never the check path: the
	// daemon publishes them as notifications.
	OnRefused func(ctx context.Context, refused []Refusal)
	// TouchInterval is how often last-used times are written back (default 1m; <0 disables).
	TouchInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// Issuer is the iss of the JWTs this daemon mints (a URL, as the Rill runtime needs), and
	// Audience their aud for a project without a runtime audience of its own.
	Issuer, Audience string
	// Keys verify those JWTs; the resolver drops their cache on a signing-key change. Nil: a
	// ring of its own over the store when it can write keys, with keys' defaults.
	Keys *keys.Ring
	// Trusted are external JWT issuers; their JWKS is refetched on an unknown kid at most once
	// per JWKSRefresh (default 1m), with HTTPClient (default: 5s timeout).
	Trusted     []TrustedIssuer
	JWKSRefresh time.Duration
	HTTPClient  *http.Client
	// Metrics, when set, counts JWKS fetches.
	Metrics *metrics.Metrics
	// MaxStaleness is how long after a store reset (store.ResetNotice) a cached principal whose
	// re-check cannot reach the store is still answered as it was (the daemon's
	// --max-staleness; default 30s; negative: not at all). RecheckInterval is how often such an
	// entry tries the store again meanwhile (default 1s).
	MaxStaleness    time.Duration
	RecheckInterval time.Duration
}

// Resolver resolves bearer tokens. It is safe for concurrent use.
type Resolver struct {
	st      store.CheckReader
	cache   *cache
	now     func() time.Time
	log     *slog.Logger
	touch   chan touch
	refused chan Refusal // tokens refused for where they were used, for the audit summary
	stop    chan struct{}
	done    chan struct{}
	refresh chan []token.ID // tokens of a changed owner, to read again ahead of their next check
	bg      sync.WaitGroup
	every   time.Duration
	opts    Options
	keys    *keys.Ring
	// trusted and maxStale change on a config reload (SetTrusted, SetMaxStaleness): read with
	// one atomic load on the check path, no lock.
	trusted  atomic.Pointer[map[string]*remoteKeys]
	maxStale atomic.Int64 // a time.Duration; opts.MaxStaleness at start
	setMu    sync.Mutex   // one SetTrusted at a time
}

// New returns a Resolver over st and subscribes it to st's changes.
func New(st store.CheckReader, o Options) *Resolver {
	if o.CacheSize == 0 {
		o.CacheSize = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TouchInterval == 0 {
		o.TouchInterval = time.Minute
	}
	if o.MaxStaleness == 0 {
		o.MaxStaleness = 30 * time.Second
	}
	if o.RecheckInterval <= 0 {
		o.RecheckInterval = time.Second
	}
	r := &Resolver{st: st, cache: newCache(o.CacheSize), now: o.Now, log: o.Logger,
		touch: make(chan touch, 4096), refused: make(chan Refusal, 1024), stop: make(chan struct{}), done: make(chan struct{}), every: o.TouchInterval, opts: o}
	if r.keys = o.Keys; r.keys == nil {
		// Tests and tools that pass a whole store get a ring of their own.
		if ws, ok := st.(keys.Store); ok {
			r.keys = keys.NewRing(ws, keys.Options{Now: o.Now})
		}
	}
	if r.opts.JWKSRefresh == 0 {
		r.opts.JWKSRefresh = time.Minute
	}
	if r.opts.HTTPClient == nil {
		r.opts.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	r.maxStale.Store(int64(r.opts.MaxStaleness))
	r.SetTrusted(r.opts.Trusted)
	r.refresh = make(chan []token.ID, 64)
	// A change drops what it names before the write returns (see apply).
	st.Subscribe(r.apply)
	r.bg.Add(1)
	go r.refreshLoop()
	go r.touchLoop()
	return r
}

// Close flushes pending last-used times and stops the background writer.
func (r *Resolver) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	r.bg.Wait()
}

// BearerFromHeader extracts the credential from an Authorization header value.
func BearerFromHeader(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", ErrMissing
	}
	if strings.EqualFold(h, "bearer") {
		return "", ErrMissing
	}
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", ErrNotBearer
	}
	t := strings.TrimSpace(h[7:])
	if t == "" {
		return "", ErrMissing
	}
	return t, nil
}

// IsJWT reports whether s has the shape of a compact JWS (header.payload.signature).
func IsJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Result is a resolved credential.
type Result struct {
	Principal *policy.Principal
	TokenID   token.ID
	entry     *entry
}

// Expires is when the credential stops working (zero: never).
func (r Result) Expires() time.Time {
	if r.entry == nil {
		return time.Time{}
	}
	return r.entry.expires
}

// Use is where a credential was presented from: the client's address (an IP, with or without a
// port) and its User-Agent, as the transport has them. It is recorded with the token's last use
// (store.TokenUse), cleaned off the check path; the zero Use says nothing of where. A transport
// that has parsed the client's address already (ClientAddr: the one that a token's allowed
// networks are checked against) gives it as IP instead of Addr, and the writer, off the check
// path, makes it text.
type Use struct {
	Addr, UserAgent string
	IP              netip.Addr
}

// touch is one use of a token, queued for the background writer. The strings are the
// transport's own (no copy on the check path); the writer keeps one per token until it flushes.
type touch struct {
	id  token.ID
	use Use
}

// AllowedFrom reports whether the credential may be used from addr (the client's address; the
// zero Addr when unknown, which a token bound to networks is refused for). It compares parsed
// prefixes and allocates nothing.
func (r Result) AllowedFrom(addr netip.Addr) bool {
	return r.entry == nil || r.entry.limits.AllowsAddr(addr)
}

// AllowedOrigin reports whether the credential may be used by a page of the request's Origin
// (else its Referer's origin); one bound to origins is refused for a request with neither.
func (r Result) AllowedOrigin(origin, referer string) bool {
	return r.entry == nil || r.entry.limits.AllowsOrigin(origin, referer)
}

// Limits are the credential's constraints (nil: none).
func (r Result) Limits() *store.Limits {
	if r.entry == nil {
		return nil
	}
	return r.entry.limits
}

// Resolve authenticates a rill_usr_/rill_svc_ token, ours or one in Rill's own format (imported
// with its hash), or a JWT. A hit in the cache reads no store and allocates nothing; a Rill-format
// token no store holds is ErrUnknown, like one of ours. It records a use that does not say where
// (ResolveFrom).
func (r *Resolver) Resolve(ctx context.Context, bearer string) (Result, error) {
	return r.ResolveFrom(ctx, bearer, Use{})
}

// ResolveFrom is Resolve for a use from where: the token's last use is recorded with it.
func (r *Resolver) ResolveFrom(ctx context.Context, bearer string, where Use) (Result, error) {
	if !token.HasPrefix(bearer) {
		if IsJWT(bearer) {
			return r.resolveJWT(ctx, bearer)
		}
		return Result{}, ErrNotRillToken
	}
	tok, err := token.Parse(bearer)
	if err != nil {
		return Result{}, err
	}
	e := r.cache.get(tok.ID)
	switch {
	case e == nil:
		if e, err = r.load(ctx, tok.ID); err != nil {
			return Result{}, err
		}
	case r.cache.stale(e):
		if e, err = r.recheck(ctx, tok.ID, e); err != nil {
			return Result{}, err
		}
	}
	// Constant-time compare against the stored hash; the id alone is not a credential.
	if !tok.Matches(e.hash) || e.kind != tok.Kind {
		return Result{}, ErrUnknown
	}
	if !e.expires.IsZero() && !r.now().Before(e.expires) {
		return Result{}, ErrExpired
	}
	select {
	case r.touch <- touch{tok.ID, where}:
	default: // last-used is best effort; never block a check on it
	}
	return Result{Principal: e.principal, TokenID: tok.ID, entry: e}, nil
}

// load reads the token and its owner from the store and caches the result.
func (r *Resolver) load(ctx context.Context, id token.ID) (*entry, error) {
	return r.loadAt(ctx, id, r.cache.gen.Load(), r.cache.epoch.Load(), nil)
}

// loadAt is load for a store read that began at generation gen and epoch; owners, when not
// nil, shares the principals read among the tokens of one batch (each read after gen).
func (r *Resolver) loadAt(ctx context.Context, id token.ID, gen, epoch uint64, owners map[string]*policy.Principal) (*entry, error) {
	rec, err := r.st.TokenAuth(ctx, id)
	if err != nil {
		return nil, tokenErr(err)
	}
	if rec.Kind == token.Magic {
		return r.loadMagic(ctx, id, rec, gen, epoch)
	}
	p := owners[rec.OwnerID]
	if p == nil {
		if p, err = r.Principal(ctx, rec.Kind, rec.OwnerID); err != nil {
			return nil, err
		}
		if owners != nil {
			owners[rec.OwnerID] = p
		}
	}
	e := &entry{hash: rec.Hash, kind: rec.Kind, expires: rec.ExpiresAt, limits: rec.Limits, principal: p, deps: []dep{{depOwner, rec.OwnerID}}, epoch: epoch}
	r.cache.put(id, e, gen)
	return e, nil
}

// tokenErr is a failed store read of a token as the resolver refuses it.
func tokenErr(err error) error {
	switch {
	case errors.Is(err, store.ErrRevoked):
		return ErrRevoked
	case errors.Is(err, store.ErrNotFound):
		return ErrUnknown
	}
	return fmt.Errorf("resolve token: %w", err)
}

// tokenReader is the store's token record read; both engines have it (store.Store). A magic
// token's grant is in its record, which the check path's TokenAuth does not carry.
type tokenReader interface {
	GetToken(ctx context.Context, id token.ID) (store.Token, error)
}

// loadMagic reads a magic token's record and caches its principal: it depends on its project
// (a change of the project drops it, as it drops decisions about the project) and, like every
// token, on its own revocation.
func (r *Resolver) loadMagic(ctx context.Context, id token.ID, rec store.TokenAuth, gen, epoch uint64) (*entry, error) {
	tr, ok := r.st.(tokenReader)
	if !ok {
		return nil, ErrUnknown
	}
	t, err := tr.GetToken(ctx, id)
	if err != nil {
		return nil, tokenErr(err)
	}
	p, err := MagicPrincipal(&t)
	if err != nil {
		r.log.Warn("refusing a public URL whose stored access rules cannot be built", "token_id", id.String(), "err", err)
		return nil, ErrMagicRules
	}
	e := &entry{hash: rec.Hash, kind: rec.Kind, expires: rec.ExpiresAt, limits: rec.Limits, principal: p, deps: []dep{{depProject, rec.OwnerID}}, epoch: epoch}
	r.cache.put(id, e, gen)
	return e, nil
}

// MagicPrincipal builds the principal of a magic token (a public URL), as Rill's magic auth
// token claims and issueRuntimeToken make it (rilldata/rill admin/server/runtime_jwt.go, case
// auth.OwnerTypeMagicAuthToken): read_project and read_prod on its one project and nothing
// else; the runtime's subject is the token's id, its attributes those stored with it (its
// creator's when it was made), and its runtime JWTs carry policy.MagicRules.
func MagicPrincipal(t *store.Token) (*policy.Principal, error) {
	m := t.Magic
	if t.Kind != token.Magic || m == nil {
		return nil, errors.New("not a magic token")
	}
	rules, err := policy.MagicRules(m.Resources, m.Filters, m.Fields)
	if err != nil {
		return nil, err
	}
	sec, err := token.EncodeSec(rules)
	if err != nil {
		return nil, err
	}
	id := t.ID.String()
	name := t.DisplayName
	if name == "" {
		name = t.Prefix
	}
	attrs := m.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	return &policy.Principal{Kind: policy.KindMagic, ID: id, SubjectID: id, Subject: t.Prefix, Name: name,
		OrgRoles: map[string]policy.Role{m.Org: policy.Guest}, ProjectRoles: map[string]policy.Role{store.ProjectKey(m.Org, m.Project): policy.Viewer},
		Limit: policy.MagicPerms | policy.ReadOrg, Attributes: attrs, Security: sec}, nil
}

// Principal loads the principal that owns tokens of kind k.
func (r *Resolver) Principal(ctx context.Context, k token.Kind, ownerID string) (*policy.Principal, error) {
	switch k {
	case token.User:
		u, err := r.st.GetUser(ctx, ownerID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrOwnerGone
		} else if err != nil {
			return nil, fmt.Errorf("resolve token owner: %w", err)
		}
		return UserPrincipal(&u), nil
	case token.Service:
		s, err := r.st.GetService(ctx, ownerID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrOwnerGone
		} else if err != nil {
			return nil, fmt.Errorf("resolve token owner: %w", err)
		}
		return ServicePrincipal(&s), nil
	}
	return nil, ErrUnknown
}

// UserPrincipal builds the principal of a user.
func UserPrincipal(u *store.User) *policy.Principal {
	name := u.DisplayName
	if name == "" {
		name = u.Email
	}
	p := &policy.Principal{Kind: policy.KindUser, ID: u.ID, SubjectID: u.ID, Subject: u.Email, Name: name, Email: u.Email,
		Superuser: u.Superuser, OrgRoles: u.OrgRoles, ProjectRoles: u.ProjectRoles}
	if len(u.Orgs) > 0 {
		p.Orgs = make(map[string]policy.OrgData, len(u.Orgs))
		for org, s := range u.Orgs {
			p.Orgs[org] = policy.OrgData{Groups: s.Groups, Attributes: s.Attributes}
		}
	}
	if len(u.Restricted) > 0 {
		p.Restrictions = make(map[string]policy.Restriction, len(u.Restricted))
		for k, r := range u.Restricted {
			p.Restrictions[k] = policy.Restriction{Resources: r.Resources}
		}
	}
	return p
}

// ServicePrincipal builds the principal of a service; its roles apply in its own org only.
func ServicePrincipal(s *store.Service) *policy.Principal {
	p := &policy.Principal{Kind: policy.KindService, ID: s.ID, SubjectID: s.ID, Subject: s.Name, Name: s.Name,
		OrgRoles: map[string]policy.Role{}, ProjectRoles: make(map[string]policy.Role, len(s.ProjectRoles)), Attributes: s.Attributes}
	if s.OrgRole != "" {
		p.OrgRoles[s.Org] = s.OrgRole
	}
	for proj, role := range s.ProjectRoles {
		p.ProjectRoles[store.ProjectKey(s.Org, proj)] = role
	}
	return p
}

// Stats is the cache's counters, for metrics: Drops counts entries dropped by changes,
// Rechecks re-reads of entries after a reset, StaleServed answers from entries a re-check
// could not confirm (the store unreachable).
type Stats struct{ Hits, Misses, Evictions, Size, Drops, Rechecks, StaleServed uint64 }

// Stats returns cache counters.
func (r *Resolver) Stats() Stats {
	c := r.cache
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Size: uint64(c.len()),
		Drops: c.drops.Load(), Rechecks: c.rechecks.Load(), StaleServed: c.staleServed.Load()}
}

// Refusal is a valid token refused for where it was used: from Addr (the zero Addr: unknown),
// Network when the network was refused (else the page's origin was).
type Refusal struct {
	ID      token.ID
	Addr    netip.Addr
	Network bool
}

// NoteRefused records that a valid token was refused for where it was used (a network or
// origin its constraints do not allow): the audit log gets a summary of them per flush (the
// last-used interval), by token id and count, never per check, and Options.OnRefused the last
// refusal of each token. Best effort and allocation-free: when the queue is full the note is
// dropped.
func (r *Resolver) NoteRefused(f Refusal) {
	select {
	case r.refused <- f:
	default:
	}
}

// touchLoop batches last-used times and writes them off the hot path.
func (r *Resolver) touchLoop() {
	defer close(r.done)
	pending := map[token.ID]store.TokenUse{}
	uses := map[token.ID]int{}
	refused := map[token.ID]int{}
	lastRefusal := map[token.ID]Refusal{}
	var tick <-chan time.Time
	if r.every > 0 {
		t := time.NewTicker(r.every)
		defer t.Stop()
		tick = t.C
	}
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if len(refused) > 0 {
			if err := r.st.AppendAudit(ctx, refusedSummary(refused, r.now())); err != nil && !errors.Is(err, store.ErrClosed) {
				r.log.Warn("recording the refused token use summary failed", "err", err)
			}
			clear(refused)
			if r.opts.OnRefused != nil {
				r.opts.OnRefused(ctx, slices.Collect(maps.Values(lastRefusal)))
			}
			clear(lastRefusal)
		}
		if len(pending) == 0 {
			return
		}
		if err := r.st.RecordUses(ctx, pending); err != nil && !errors.Is(err, store.ErrClosed) {
			r.log.Warn("recording token last-used times failed", "tokens", len(pending), "err", err)
		}
		if err := r.st.AppendAudit(ctx, useSummary(uses, r.now())); err != nil && !errors.Is(err, store.ErrClosed) {
			r.log.Warn("recording the token use summary failed", "err", err)
		}
		clear(pending)
		clear(uses)
	}
	// record is the one place a use is counted, so the drain at stop counts as the loop does.
	// The latest use that says where it came from names the where (a use that does not, such as
	// an introspection, keeps it); the store cleans it once per token and flush.
	record := func(t touch) {
		u := pending[t.id]
		u.At = r.now()
		if t.use.Addr != "" || t.use.IP.IsValid() || t.use.UserAgent != "" {
			u.IP, u.UserAgent = t.use.Addr, t.use.UserAgent
			if u.IP == "" && t.use.IP.IsValid() {
				u.IP = t.use.IP.String()
			}
		}
		pending[t.id] = u
		uses[t.id]++
	}
	for {
		select {
		case t := <-r.touch:
			record(t)
		case f := <-r.refused:
			refused[f.ID]++
			lastRefusal[f.ID] = f
		case <-tick:
			flush()
		case <-r.stop:
			for {
				select {
				case t := <-r.touch:
					record(t)
				case f := <-r.refused:
					refused[f.ID]++
					lastRefusal[f.ID] = f
				default:
					flush()
					return
				}
			}
		}
	}
}

// refusedSummary is the audit event of the tokens refused for where they were used since the
// last flush (network_not_allowed, origin_not_allowed), the most refused first.
func refusedSummary(refused map[token.ID]int, now time.Time) store.AuditEvent {
	e := useSummary(refused, now)
	e.Action, e.Outcome = "token.use_refused", "denied"
	e.Target = strings.Replace(e.Target, "checks", "refused checks", 1)
	return e
}

// useSummary is the audit event of a flush: how many tokens were used how often, the busiest
// first (at most 20 named, by token id).
func useSummary(uses map[token.ID]int, now time.Time) store.AuditEvent {
	type use struct {
		id string
		n  int
	}
	list := make([]use, 0, len(uses))
	total := 0
	for id, n := range uses {
		list = append(list, use{id.String(), n})
		total += n
	}
	sort.Slice(list, func(i, j int) bool { return list[i].n > list[j].n || list[i].n == list[j].n && list[i].id < list[j].id })
	var detail []string
	for i, u := range list {
		if i == 20 {
			detail = append(detail, fmt.Sprintf("and %d more", len(list)-20))
			break
		}
		detail = append(detail, fmt.Sprintf("%s×%d", u.id, u.n))
	}
	return store.AuditEvent{Time: now.UTC(), Actor: "rill-authd", Action: "token.use",
		Target: fmt.Sprintf("%d tokens, %d checks", len(uses), total), Outcome: "ok", Detail: strings.Join(detail, " ")}
}

// SetTrusted replaces the trusted external issuers (a config reload). An issuer whose
// settings are unchanged keeps its fetched JWKS; when the set changed, every cached JWT
// principal is dropped, so a token of an issuer no longer trusted (or trusted for another org)
// is verified again on its next check rather than answered from the cache.
func (r *Resolver) SetTrusted(tis []TrustedIssuer) {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	var old map[string]*remoteKeys
	if p := r.trusted.Load(); p != nil {
		old = *p
	}
	m := make(map[string]*remoteKeys, len(tis))
	same := len(tis) == len(old)
	for _, ti := range tis {
		if rk := old[ti.Issuer]; rk != nil && rk.ti == ti {
			m[ti.Issuer] = rk
			continue
		}
		same = false
		m[ti.Issuer] = &remoteKeys{ti: ti, client: r.opts.HTTPClient, minRefresh: r.opts.JWKSRefresh, now: r.now, metrics: r.opts.Metrics}
	}
	r.trusted.Store(&m)
	if old != nil && !same {
		r.cache.dropKind(kindJWT)
	}
}

// SetMaxStaleness changes MaxStaleness (a config reload); negative: not at all.
func (r *Resolver) SetMaxStaleness(d time.Duration) {
	if d == 0 {
		d = -1 // as Options: 0 is the default there, but a reload means what it says
	}
	r.maxStale.Store(int64(d))
}
