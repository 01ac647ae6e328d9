package ctl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// TokenCmd is `rillctl token`.
type TokenCmd struct {
	Issue  TokenIssueCmd  `cmd:"" help:"Issue a user token for yourself (or, as a superuser, for --user)."`
	List   TokenListCmd   `cmd:"" help:"List your user tokens."`
	Show   TokenShowCmd   `cmd:"" help:"Show one of your user tokens: when and where from it was last used."`
	Revoke TokenRevokeCmd `cmd:"" help:"Revoke a user token by id or by display name, or all of a user's tokens (--all)."`
	Edit   TokenEditCmd   `cmd:"" help:"Change the networks a user token may be used from."`
}

// TokenIssueCmd is `rillctl token issue`.
type TokenIssueCmd struct {
	DisplayName  string   `help:"A name to recognise the token by (asked for on a terminal when not given)."`
	TTLMinutes   *int     `name:"ttl-minutes" help:"Minutes until the token expires (asked for on a terminal; none: never)."`
	User         string   `help:"Issue the token for this user's email instead of yourself (superusers)." placeholder:"EMAIL"`
	AllowNetwork []string `name:"allow-network" sep:"none" help:"Allow the token only from this network (a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or one address); repeatable. None: anywhere." placeholder:"CIDR"`
}

// Run issues the token.
func (c *TokenIssueCmd) Run(g *Globals) error {
	req := apiv1.TokenRequest{DisplayName: c.DisplayName, UserEmail: c.User, AllowedNetworks: c.AllowNetwork}
	if c.TTLMinutes != nil {
		if *c.TTLMinutes < 0 {
			return errors.New("--ttl-minutes must be 0 (never expires) or more")
		}
		req.TTLMinutes = *c.TTLMinutes
	}
	if req.DisplayName == "" {
		if !g.isTTY {
			return errors.New("--display-name is required when stdin is not a terminal (rillctl asks for it only on one)")
		}
		name, err := g.prompt("Display name: ")
		if err != nil {
			return err
		}
		if name == "" {
			return errors.New("a display name is required")
		}
		req.DisplayName = name
		if c.TTLMinutes == nil {
			ttl, err := g.prompt("Expire after how many minutes (empty: never): ")
			if err != nil {
				return err
			}
			if ttl != "" {
				n, err := strconv.Atoi(ttl)
				if err != nil || n < 0 {
					return fmt.Errorf("%q is not a number of minutes", ttl)
				}
				req.TTLMinutes = n
			}
		}
	}
	return call(g, func(cl *client.Client) (apiv1.IssuedToken, error) { return cl.IssueToken(g.ctx, req) }, func(t apiv1.IssuedToken) {
		fmt.Fprintf(g.out, "Issued token %q (expires %s).\n", t.DisplayName, when(t.ExpiresAt, "never"))
		fmt.Fprintf(g.out, "Token: %s\n", t.Token)
	})
}

// TokenListCmd is `rillctl token list`.
type TokenListCmd struct {
	User string `help:"List this user's tokens instead of yours (superusers)." placeholder:"EMAIL"`
}

// Run lists tokens.
func (c *TokenListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.TokenInfo, error) { return cl.ListTokens(g.ctx, c.User) }, func(ts []apiv1.TokenInfo) {
		rows := make([][]string, 0, len(ts))
		for _, t := range ts {
			rows = append(rows, []string{t.Prefix + "...", dash(t.DisplayName) + representing(t), when(t.CreatedAt, "-"), when(t.ExpiresAt, "Never") + beyondMark(t)})
		}
		g.table("ID\tDISPLAY NAME\tCREATED\tEXPIRES", rows)
		beyondFootnotes(g, ts)
	})
}

// TokenShowCmd is `rillctl token show <token-id>`: a token with where it was last used from,
// which the list's columns (Rill's) leave out.
type TokenShowCmd struct {
	TokenID string `arg:"" name:"token-id" help:"Token id as listed (rill_usr_ and at least 10 more characters), its UUID, or the token itself."`
	User    string `help:"Show a token of this user instead of yours (superusers)." placeholder:"EMAIL"`
}

// Run shows the token.
func (c *TokenShowCmd) Run(g *Globals) error {
	ref := strings.TrimSuffix(strings.TrimSpace(c.TokenID), "...")
	return call(g, func(cl *client.Client) (apiv1.TokenInfo, error) {
		ts, err := cl.ListTokens(g.ctx, c.User)
		if err != nil {
			return apiv1.TokenInfo{}, err
		}
		for _, t := range ts {
			if ref == t.ID || len(ref) >= len("rill_usr_")+10 && (strings.HasPrefix(t.Prefix, ref) || strings.HasPrefix(ref, t.Prefix)) {
				return t, nil
			}
		}
		if c.User == "" {
			return apiv1.TokenInfo{}, fmt.Errorf("no token %q among your own tokens (another user's token: --user EMAIL, superusers only)", c.TokenID)
		}
		return apiv1.TokenInfo{}, fmt.Errorf("no token %q among %s's tokens", c.TokenID, c.User)
	}, func(t apiv1.TokenInfo) {
		fmt.Fprintf(g.out, "ID:             %s...\n", t.Prefix)
		fmt.Fprintf(g.out, "UUID:           %s\n", t.ID)
		fmt.Fprintf(g.out, "Display name:   %s\n", dash(t.DisplayName))
		fmt.Fprintf(g.out, "Created:        %s\n", when(t.CreatedAt, "-"))
		fmt.Fprintf(g.out, "Expires:        %s\n", when(t.ExpiresAt, "Never"))
		fmt.Fprintf(g.out, "Last used:      %s\n", when(t.LastUsedAt, "Never"))
		fmt.Fprintf(g.out, "Last used from: %s\n", dash(t.LastUsedIP))
		fmt.Fprintf(g.out, "User agent:     %s\n", dash(t.LastUsedUserAgent))
	})
}

// usedFrom is " from IP (user agent)" for where a token was last used, or "" when not known.
func usedFrom(ip, ua string) string {
	var b strings.Builder
	if ip != "" {
		b.WriteString(" from " + ip)
	}
	if ua != "" {
		b.WriteString(" (" + ua + ")")
	}
	return b.String()
}

// representing marks a token a superuser issued to act as a user (rillctl sudo user assume).
func representing(t apiv1.TokenInfo) string {
	if t.RepresentingEmail == "" {
		return ""
	}
	return " (acting as " + t.RepresentingEmail + ", by " + dash(t.IssuedBy) + ")"
}

// TokenRevokeCmd is `rillctl token revoke`.
type TokenRevokeCmd struct {
	TokenID      string `arg:"" optional:"" name:"token-id" help:"Token id as listed (rill_usr_ and at least 10 more characters), its UUID, or the token itself."`
	DisplayName  string `help:"Revoke the token with this display name (refused if several have it)."`
	All          bool   `help:"Revoke all your tokens (or --user's), the one you run this with too, and those you issued to act as others (Rill's RevokeAllUserAuthTokens)."`
	Representing bool   `help:"With --user: revoke only the tokens superusers issued to act as that user (rillctl sudo user assume); superusers only."`
	User         string `help:"Revoke a token of this user instead of yours (superusers)." placeholder:"EMAIL"`
}

// Run revokes the token.
func (c *TokenRevokeCmd) Run(g *Globals) error {
	if c.All || c.Representing {
		return c.revokeAll(g)
	}
	if (c.TokenID == "") == (c.DisplayName == "") {
		return errors.New("give a token id, --display-name or --all (one of them)")
	}
	cl, err := g.client()
	if err != nil {
		return err
	}
	var r apiv1.Revoked
	if c.TokenID != "" {
		r, err = cl.RevokeToken(g.ctx, c.User, c.TokenID)
	} else {
		r, err = cl.RevokeTokenByName(g.ctx, c.User, c.DisplayName)
	}
	var e *client.Error
	if c.User == "" && errors.As(err, &e) && e.Status == 404 && strings.HasPrefix(e.Message, "no token") {
		// Without --user the token is looked for among the caller's own only.
		return fmt.Errorf("%w among your own tokens (another user's token: --user EMAIL, superusers only)", err)
	}
	if err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(r)
	}
	t := r.Revoked[0]
	fmt.Fprintf(g.out, "Revoked token %s... (%q).\n", t.Prefix, t.DisplayName)
	return nil
}

// revokeAll is `rillctl token revoke --all` and `--representing`.
func (c *TokenRevokeCmd) revokeAll(g *Globals) error {
	switch {
	case c.All && c.Representing:
		return errors.New("give --all or --representing, not both")
	case c.TokenID != "" || c.DisplayName != "":
		return errors.New("--all and --representing revoke many tokens: give no token id or --display-name with them")
	case c.Representing && c.User == "":
		return errors.New("--representing needs --user EMAIL: the user whose assumed tokens to revoke")
	}
	return call(g, func(cl *client.Client) (apiv1.Revoked, error) {
		return cl.RevokeAllTokens(g.ctx, c.User, c.Representing)
	}, func(r apiv1.Revoked) {
		whose := "your"
		if c.User != "" {
			whose = c.User + "'s"
		}
		what := "tokens"
		if c.Representing {
			what = "tokens acting as " + c.User
			whose = "the"
		}
		fmt.Fprintf(g.out, "Revoked %d of %s %s.\n", len(r.Revoked), whose, what)
		for _, t := range r.Revoked {
			fmt.Fprintf(g.out, "  %s... (%q)\n", t.Prefix, t.DisplayName)
		}
	})
}
