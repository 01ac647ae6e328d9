package ctl

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/client"
)

// LoginCmd is `rillctl login`: the OAuth 2.0 device authorization grant (RFC 8628), as Rill's
// `rill login` does it (rilldata/rill cli/cmd/auth/login.go): rillctl shows a code and a URL,
// the user approves the code in the web console, and rillctl keeps the user token it receives.
type LoginCmd struct {
	URL string `name:"url" placeholder:"URL" help:"rill-authd to sign in to: the root of its admin API, as --api-url (default: --api-url or RILLCTL_API_URL, else http://127.0.0.1:8080)."`
}

// Help says where the token goes and what a login replaces: the parts --help must answer.
func (c *LoginCmd) Help() string {
	return `rillctl shows a code and a page of the web console; open the page where you are signed in to
the console (or sign in there, with a token or your identity provider), check the code and
approve. rillctl then receives a user token of yours, named "rillctl on <host>", and keeps it
with the server's URL in $XDG_CONFIG_HOME/rillctl/credentials.json (default ~/.config/rillctl/,
mode 0600). Later commands use it, on that server, unless --token or RILLCTL_TOKEN is given.

Logging in again replaces the stored credentials and revokes the tokens they held. The code
expires after 10 minutes. "rillctl logout" revokes the token and removes the file.`
}

// Run signs in.
func (c *LoginCmd) Run(g *Globals) error {
	base, flag := c.URL, "--url"
	if base == "" {
		base, flag = g.APIURL, "--api-url"
	}
	if base == "" {
		base = defaultAPIURL
	}
	if err := checkAPIURL(flag, base); err != nil {
		return err
	}
	base = strings.TrimRight(base, "/")
	// What would refuse the token at the end is said before anyone approves a code.
	if p, err := credentialsPath(); err != nil {
		return err
	} else if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is a symlink or not a regular file, and rillctl never writes its token through one: remove it, then run rillctl login again", p)
	}
	cl, err := g.newClient(base, "")
	if err != nil {
		return err
	}
	meta, err := cl.OAuthMetadata(g.ctx)
	if err != nil {
		return fmt.Errorf("read the server's sign-in endpoints: %w", apiURLHint(err, flag, base))
	}
	auth, err := cl.DeviceAuthorize(g.ctx, meta.DeviceAuthorizationEndpoint, hostName())
	if err != nil {
		return fmt.Errorf("ask for a sign-in code: %w", err)
	}
	fmt.Fprintf(g.out, "Open this page in a browser where you are signed in to the console (or sign in there):\n\n  %s\n\n", auth.VerificationURIComplete)
	fmt.Fprintf(g.out, "and check that it shows the code %s. Waiting for your approval (the code expires in %d minutes)...\n", auth.UserCode, max(auth.ExpiresIn/60, 1))
	tok, err := g.pollDevice(cl, meta.TokenEndpoint, auth.DeviceCode, auth.Interval, auth.ExpiresIn)
	if err != nil {
		return err
	}
	old, hadOld, _ := loadCredentials()
	if err := saveCredentials(credentials{URL: base, Token: tok}); err != nil {
		// A token nobody holds is a live secret nobody will revoke: revoke it now (as assume does).
		if _, rerr := client.New(base, tok, client.WithHTTPClient(cl.HTTP)).RevokeCurrentToken(g.ctx); rerr != nil {
			return fmt.Errorf("signed in, but %w (the token %s... is live and could not be revoked: %v; revoke it in the console)", err, tokenPrefix(tok), rerr)
		}
		return fmt.Errorf("signed in, but %w; the token was revoked again and nothing is stored: fix that, then run rillctl login again", err)
	}
	path, _ := credentialsPath()
	// The token(s) this login replaces are revoked, as Rill's `rill login` logs out first: a
	// forgotten token in no file is a live secret nobody will revoke.
	if hadOld {
		g.revokeStored(old, tok)
	}
	who, err := client.New(base, tok, client.WithHTTPClient(cl.HTTP)).Whoami(g.ctx)
	if err != nil {
		return fmt.Errorf("signed in and saved the token in %s, but whoami failed: %w", path, err)
	}
	// The token's id as rillctl token list shows it, not its UUID, which no list prints.
	fmt.Fprintf(g.out, "Signed in as %s (token %s...), saved in %s.\n", who.Subject, tokenPrefix(tok), path)
	if g.Token != "" {
		fmt.Fprintf(g.errOut, "rillctl: note: --token/RILLCTL_TOKEN wins over the stored token: unset RILLCTL_TOKEN (and drop --token) for later commands to use the token of this login\n")
	}
	return nil
}

// pollDevice polls the token endpoint every interval seconds (5 when the server names none),
// 5 seconds more after each slow_down, until the user decides or the code expires.
func (g *Globals) pollDevice(cl *client.Client, endpoint, code string, interval, expiresIn int) (string, error) {
	wait := time.Duration(max(interval, 1)) * time.Second
	if interval <= 0 {
		wait = 5 * time.Second
	}
	deadline := time.Now().Add(time.Duration(max(expiresIn, 60)) * time.Second)
	failures := 0
	for {
		select {
		case <-g.ctx.Done():
			return "", g.ctx.Err()
		case <-time.After(wait):
		}
		t, err := cl.DeviceToken(g.ctx, endpoint, code)
		if err == nil {
			return t.AccessToken, nil
		}
		var oe *client.OAuthError
		if !errors.As(err, &oe) {
			// The server unreachable for a moment: keep trying while the code lives.
			if failures++; failures > 5 || time.Now().After(deadline) {
				return "", fmt.Errorf("waiting for approval: %w", err)
			}
			continue
		}
		failures = 0
		switch oe.OAuthError.Error {
		case "authorization_pending":
		case "slow_down":
			wait += 5 * time.Second // RFC 8628 section 3.5
		case "temporarily_unavailable":
		case "access_denied":
			return "", errors.New("the sign-in was denied in the console")
		case "expired_token":
			return "", errors.New("the code expired before it was approved: run rillctl login again")
		default:
			return "", fmt.Errorf("sign-in failed: %w", oe)
		}
		if time.Now().After(deadline) {
			return "", errors.New("the code expired before it was approved: run rillctl login again")
		}
	}
}

// hostName is the machine's name as the server accepts it (letters, digits, '.', '-', '_'):
// the approving user sees it, and the token is named "rillctl on <host>".
func hostName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, h)
	return h[:min(len(h), 253)]
}

// revokeStored revokes, best effort, the tokens of replaced credentials (but keep), telling
// on stderr what it could not revoke.
func (g *Globals) revokeStored(c credentials, keep string) {
	url := c.URL
	if url == "" {
		url = defaultAPIURL
	}
	for _, tok := range []string{c.Token, c.BackupToken} {
		if tok == "" || tok == keep {
			continue
		}
		cl, err := g.newClient(url, tok)
		if err == nil {
			_, err = cl.RevokeCurrentToken(g.ctx)
		}
		var ae *client.Error
		if err != nil && !(errors.As(err, &ae) && ae.Status == 401) {
			fmt.Fprintf(g.errOut, "rillctl: could not revoke the token of the previous login, %s…: %v\n", tokenPrefix(tok), err)
		}
	}
}

// LogoutCmd is `rillctl logout`: Rill's `rill logout` revokes the token in use
// (RevokeCurrentAuthToken) and forgets it.
type LogoutCmd struct{}

// Help says what is revoked, and what is not.
func (c *LogoutCmd) Help() string {
	return `Revokes the token stored by "rillctl login" (and, while you act as another user, both the
assumed token and your own kept behind it), then removes $XDG_CONFIG_HOME/rillctl/credentials.json
(default ~/.config/rillctl/). A token given with --token or RILLCTL_TOKEN is not touched. With
the server unreachable the file is removed anyway, and rillctl names the token it could not
revoke (exit 1).`
}

// Run revokes and removes the stored credentials. The file goes even when the server cannot be
// reached (rillctl then says so, and which token to revoke later).
func (c *LogoutCmd) Run(g *Globals) error {
	creds, ok, err := loadCredentials()
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(g.out, "Not signed in: no stored credentials.")
		return nil
	}
	url := creds.URL
	if url == "" {
		url = defaultAPIURL
	}
	var failed []string
	for _, tok := range []string{creds.Token, creds.BackupToken} {
		if tok == "" {
			continue
		}
		cl, err := g.newClient(url, tok)
		if err == nil {
			_, err = cl.RevokeCurrentToken(g.ctx)
		}
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == 401 {
			err = nil // revoked or expired already
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("token %s…: %v", tokenPrefix(tok), err))
		}
	}
	if err := removeCredentials(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("removed the stored credentials, but could not revoke %s (revoke it in the console or with rillctl token revoke once the server is back)", strings.Join(failed, "; "))
	}
	fmt.Fprintln(g.out, "Signed out: the token is revoked and the stored credentials removed.")
	return nil
}

// tokenPrefix is a token's display prefix ("token id" in lists), safe to print.
func tokenPrefix(tok string) string {
	const n = len("rill_usr_") + 10
	if len(tok) < n {
		return "?"
	}
	return tok[:n]
}
