package testenv

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// OPUser is a person at the test OpenID provider: the username and password typed at its
// login page and the claims its ID tokens carry.
type OPUser struct {
	Username, Password string
	Email              string
	EmailVerified      bool
	// Groups is the ID token's "groups" claim (absent when empty).
	Groups []string
}

// OP is a real OpenID provider (zitadel/oidc's pkg/op with the storage and login page of its
// example server) on loopback, for sign-in tests: discovery, JWKS, authorization code flow
// with PKCE, a username and password form. Its issuer is http://localhost:<port>: another
// site than the daemon's http://127.0.0.1:<port>, so a browser treats the sign-in's redirects
// as cross-site, as they are in production.
type OP struct {
	// Issuer is the provider's issuer URL (what oidc_providers[].issuer names).
	Issuer string
	st     *opStorage
	srv    *http.Server
}

// StartOIDCProvider starts an OpenID provider on 127.0.0.1 port 0 with users; it stops at the
// end of the test. Register the clients with AddClient.
func StartOIDCProvider(t testing.TB, users ...OPUser) *OP {
	t.Helper()
	return StartOIDCProviderAt(t, "127.0.0.1:0", users...)
}

// StartOIDCProviderAt is StartOIDCProvider on addr (127.0.0.1:port): a test that starts the
// daemon while the provider is down (FreeLoopbackPort) starts it later where it was expected.
func StartOIDCProviderAt(t testing.TB, addr string, users ...OPUser) *OP {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://localhost:" + strconv.Itoa(lis.Addr().(*net.TCPAddr).Port)
	us := &opUsers{byID: map[string]*OPUser{}}
	st := &opStorage{Storage: storage.NewStorageWithClients(us, map[string]*storage.Client{}), users: us, clients: map[string]opClient{}}
	for _, u := range users {
		us.set(u)
	}
	// Every sign-in asks for a login: no session at the provider survives between them.
	h := exampleop.SetupServer(issuer, st, nil, false)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &OP{Issuer: issuer, st: st, srv: srv}
}

// Stop takes the provider down (a provider that fails after the daemon discovered it).
func (o *OP) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
}

// AddClient registers a confidential web client (HTTP basic or form authentication) whose
// ID tokens carry the user's claims (email, email_verified, groups).
func (o *OP) AddClient(id, secret string, redirectURIs ...string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.clients[id] = opClient{Client: storage.WebClient(id, secret, redirectURIs...), secret: secret}
}

// SetUser adds u, or replaces the user with u's username (a test changes a claim, such as the
// groups, between two sign-ins).
func (o *OP) SetUser(u OPUser) { o.st.users.set(u) }

// opClient is the example's web client with the user's claims in its ID tokens, as Google,
// Okta and Keycloak put them.
type opClient struct {
	*storage.Client
	secret string
}

func (opClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// opStorage is the example storage with our clients and the groups claim.
type opStorage struct {
	*storage.Storage
	users   *opUsers
	mu      sync.Mutex
	clients map[string]opClient
}

func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret != secret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	u := s.users.get(req.GetSubject())
	if u == nil {
		return nil
	}
	if len(u.Groups) > 0 {
		ui.AppendClaims("groups", u.Groups)
	}
	// zitadel's UserInfo leaves email_verified out when false; a provider that says false
	// says so, as Google and Keycloak do.
	if !u.EmailVerified && slices.Contains(scopes, oidc.ScopeEmail) {
		ui.AppendClaims("email_verified", false)
	}
	return nil
}

// opUsers is the provider's user store (storage.UserStore); a user's id is their username.
type opUsers struct {
	mu   sync.Mutex
	byID map[string]*OPUser
}

func (us *opUsers) set(u OPUser) {
	us.mu.Lock()
	defer us.mu.Unlock()
	u.Groups = append([]string(nil), u.Groups...)
	us.byID[u.Username] = &u
}

func (us *opUsers) get(id string) *OPUser {
	us.mu.Lock()
	defer us.mu.Unlock()
	u := us.byID[id]
	if u == nil {
		return nil
	}
	c := *u
	return &c
}

func (us *opUsers) GetUserByID(id string) *storage.User {
	u := us.get(id)
	if u == nil {
		return nil
	}
	return &storage.User{ID: u.Username, Username: u.Username, Password: u.Password, FirstName: u.Username,
		Email: u.Email, EmailVerified: u.EmailVerified}
}

func (us *opUsers) GetUserByUsername(name string) *storage.User { return us.GetUserByID(name) }

func (us *opUsers) ExampleClientID() string { return "service" }

// FreeLoopbackPort is a TCP port on 127.0.0.1 that was free a moment ago.
func FreeLoopbackPort(t testing.TB) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}

// Login is a browser without JavaScript signing in at the provider: from u (an authorization
// URL) it follows the redirects with c (which must not follow them itself, and should hold a
// cookie jar), fills the login form as username, and returns the first redirect target under
// stop (the client's redirect URI, with its code and state), without requesting it.
func (o *OP) Login(t testing.TB, c *http.Client, u, username, password, stop string) string {
	t.Helper()
	for range 10 {
		if strings.HasPrefix(u, stop) {
			return u
		}
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `name="password"`) {
			lu, _ := url.Parse(u)
			form := url.Values{"id": {lu.Query().Get("authRequestID")}, "username": {username}, "password": {password}}
			if resp, err = c.PostForm(o.Issuer+"/login/username", form); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("Location") == "" {
				t.Fatalf("login as %s: %d, no redirect (wrong password?)", username, resp.StatusCode)
			}
		} else if resp.Header.Get("Location") == "" {
			t.Fatalf("at %s: %d without a redirect:\n%s", u, resp.StatusCode, b)
		}
		next, err := resp.Location() // resolved against the request it answers
		if err != nil {
			t.Fatal(err)
		}
		u = next.String()
	}
	t.Fatalf("no redirect to %s in 10 steps (at %s)", stop, u)
	return ""
}
