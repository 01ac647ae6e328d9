package extauthz_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"net"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// fixture is a real in-memory Badger store with one org, two projects and principals of every
// kind the tests need, a resolver over it, and the extauthz server.
type fixture struct {
	st     *badger.DB
	res    *resolver.Resolver
	srv    *extauthz.Server
	tokens map[string]string   // name -> wire token
	ids    map[string]token.ID // name -> token id
}

func newFixture(tb testing.TB, opts resolver.Options) *fixture {
	tb.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if opts.TouchInterval == 0 {
		opts.TouchInterval = -1
	}
	res := resolver.New(st, opts)
	tb.Cleanup(res.Close)
	f := &fixture{st: st, res: res, srv: extauthz.New(res, extauthz.Config{}), tokens: map[string]string{}, ids: map[string]token.ID{}}
	ctx := context.Background()
	now := time.Now().UTC()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(st.CreateOrg(ctx, store.Org{Name: "acme", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "web", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "data", CreatedAt: now}))
	users := []store.User{
		{ID: "u-alice", Email: "alice@example.com", DisplayName: "Alice", OrgRoles: map[string]policy.Role{"acme": "viewer"},
			ProjectRoles: map[string]policy.Role{"acme/web": "viewer"}, Orgs: map[string]store.UserOrg{"acme": {Groups: []string{"eng"}, Attributes: map[string]any{"region": "eu", "email": "spoof@evil"}}}},
		{ID: "u-bob", Email: "bob@acme.io", DisplayName: "Bob", OrgRoles: map[string]policy.Role{"acme": "admin"}},
		{ID: "u-carol", Email: "carol@other.org", DisplayName: "Carol"},
		{ID: "u-dave", Email: "dave@acme.io", OrgRoles: map[string]policy.Role{"acme": "viewer"}},
	}
	for _, u := range users {
		u.CreatedAt, u.UpdatedAt = now, now
		must(st.CreateUser(ctx, u))
	}
	must(st.CreateService(ctx, store.Service{ID: "s-ci", Org: "acme", Name: "ci", ProjectRoles: map[string]policy.Role{"web": "editor"},
		Attributes: map[string]any{"partner": "p1"}, CreatedAt: now, UpdatedAt: now}))
	for name, spec := range map[string]struct {
		kind    token.Kind
		owner   string
		expires time.Time
	}{
		"alice": {token.User, "u-alice", time.Time{}}, "bob": {token.User, "u-bob", time.Time{}},
		"carol": {token.User, "u-carol", time.Time{}}, "dave": {token.User, "u-dave", time.Time{}},
		"svc": {token.Service, "s-ci", time.Time{}}, "expired": {token.User, "u-alice", now.Add(-time.Minute)},
		"revoked": {token.User, "u-alice", time.Time{}},
	} {
		f.addToken(tb, name, spec.kind, spec.owner, spec.expires)
	}
	must(st.DeleteToken(ctx, f.ids["revoked"]))
	f.addRillToken(tb, "alice-rill", token.User, "u-alice")
	return f
}

// addRillToken stores a token minted as Rill mints them (big.Int(id ‖ secret).Text(62)) under
// its UUID with Rill's secret_hash, the SHA-256 of its 24 secret bytes, as an import would.
func (f *fixture) addRillToken(tb testing.TB, name string, k token.Kind, owner string) {
	tb.Helper()
	var raw [40]byte
	if _, err := rand.Read(raw[:]); err != nil {
		tb.Fatal(err)
	}
	raw[0] = 0 // an id with a zero first byte: a text shorter than 54 digits
	var id token.ID
	copy(id[:], raw[:16])
	secretHash := sha256.Sum256(raw[16:])
	h, err := token.HashFromBytes(secretHash[:])
	if err != nil {
		tb.Fatal(err)
	}
	rec := store.Token{ID: id, Kind: k, OwnerID: owner, DisplayName: name, Prefix: token.RillDisplay(k, id), Hash: h, CreatedAt: time.Now().UTC()}
	if err := f.st.ImportTokens(context.Background(), []store.Token{rec}); err != nil {
		tb.Fatal(err)
	}
	f.tokens[name], f.ids[name] = "rill_"+string(k)+"_"+new(big.Int).SetBytes(raw[:]).Text(62), id
}

func (f *fixture) addToken(tb testing.TB, name string, k token.Kind, owner string, expires time.Time) {
	tb.Helper()
	tok, err := token.New(k)
	if err != nil {
		tb.Fatal(err)
	}
	rec := store.Token{ID: tok.ID, Kind: k, OwnerID: owner, DisplayName: name, Prefix: tok.Display(),
		Hash: tok.Hash(), CreatedAt: time.Now().UTC(), ExpiresAt: expires}
	if err := f.st.CreateToken(context.Background(), rec); err != nil {
		tb.Fatal(err)
	}
	f.tokens[name], f.ids[name] = tok.Encode(), tok.ID
}

// grpcClient serves f.srv (or another Authorization server) on a real loopback listener.
func grpcClient(tb testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) authv3.AuthorizationClient {
	tb.Helper()
	return authv3.NewAuthorizationClient(grpcConn(tb, register, opts...))
}

func grpcConn(tb testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) *grpc.ClientConn {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	register(g)
	go g.Serve(lis)
	tb.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// envoyRequest builds a CheckRequest the way Envoy's ext_authz filter does.
func envoyRequest(method, path string, headers map[string]string, ext map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": "rill.example.com", ":method": method, ":path": path, "user-agent": "curl/8.0", "x-request-id": "4f9c"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Principal: "", Service: ""},
		Destination: &authv3.AttributeContext_Peer{},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "4f9c", Method: method, Headers: h, Path: path, Host: "rill.example.com", Scheme: "https", Protocol: "HTTP/1.1",
		}},
		ContextExtensions: ext,
	}}
}
