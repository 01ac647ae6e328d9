package ctl

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// SudoCmd is `rillctl sudo`: what only superusers do, as Rill's CLI has it (rilldata/rill
// cli/cmd/sudo).
type SudoCmd struct {
	User SudoUserCmd `cmd:"" help:"Act as another user."`
}

// SudoUserCmd is `rillctl sudo user`.
type SudoUserCmd struct {
	Assume   SudoAssumeCmd   `cmd:"" help:"Temporarily act as another user: rillctl's stored token becomes a short-lived token that is theirs (superusers)."`
	Unassume SudoUnassumeCmd `cmd:"" help:"Stop acting as another user: revoke the assumed token and go back to the token stored before."`
}

// SudoAssumeCmd is `rillctl sudo user assume EMAIL`, after Rill's cli/cmd/sudo/user/assume.go:
// the server issues a token acting as the user (POST /v1/tokens/represent), and it becomes the
// token rillctl's later commands use, the one in force before kept as its backup.
type SudoAssumeCmd struct {
	Email      string `arg:"" help:"Email of the user to act as (not a superuser)."`
	TTLMinutes int64  `name:"ttl-minutes" default:"60" help:"Minutes until the assumed token expires (1 to 1440)."`
}

// Help explains where the tokens go, which is the part that can surprise.
func (c *SudoAssumeCmd) Help() string {
	return `The assumed token is stored in rillctl's credentials file ($XDG_CONFIG_HOME/rillctl/credentials.json,
default ~/.config/rillctl/, mode 0600), where rillctl login keeps its token; the token stored there
before is kept as the backup that "rillctl sudo user unassume" restores.

A token given with --token or RILLCTL_TOKEN is never written to disk. Used to assume, it issues the
assumed token, which is stored as above; but --token and RILLCTL_TOKEN win over the stored token,
so later commands act as the other user only once RILLCTL_TOKEN is unset (rillctl says so).
Unassume then revokes the assumed token and removes it from the file, leaving there whatever
was there before (nothing, if nothing was).

Every use of the assumed token is audited as the user, "assumed by" you.`
}

// Run assumes the user.
func (c *SudoAssumeCmd) Run(g *Globals) error {
	if c.TTLMinutes < 1 || c.TTLMinutes > apiv1.MaxRepresentMinutes {
		return fmt.Errorf("--ttl-minutes must be from 1 to %d (a day), not %d", apiv1.MaxRepresentMinutes, c.TTLMinutes)
	}
	explicit := g.Token != "" // --token or RILLCTL_TOKEN, not the stored one
	stored, have, err := loadCredentials()
	if err != nil {
		return err
	}
	if have && stored.BackupToken != "" {
		return errors.New("you are already acting as another user: run rillctl sudo user unassume first")
	}
	cl, err := g.client()
	if err != nil {
		return err
	}
	if have && stored.URL != "" && !sameAPIURL(stored.URL, g.APIURL) {
		return fmt.Errorf("rillctl's stored credentials are for %s, not %s: assume against that server, or run rillctl login --api-url %s first", stored.URL, g.APIURL, g.APIURL)
	}
	if have && stored.Token != "" && stored.Token != g.Token {
		// An assume made with --token/RILLCTL_TOKEN stores the assumed token with no backup:
		// assuming again would keep it as the backup, which unassume then restores as if it
		// were yours, still acting as that user.
		if scl, err := g.newClient(g.APIURL, stored.Token); err == nil {
			if w, err := scl.Whoami(g.ctx); err == nil && w.AssumedBy != "" {
				return fmt.Errorf("you are already acting as %s (the stored token): run rillctl sudo user unassume first", w.Subject)
			}
		}
	}
	t, err := cl.Represent(g.ctx, c.Email, c.TTLMinutes)
	if err != nil {
		return err
	}
	next := credentials{URL: g.APIURL, Token: t.Token}
	if have {
		next.BackupToken = stored.Token // what the file held, never an --token/RILLCTL_TOKEN one
	}
	if err := saveCredentials(next); err != nil {
		// The token exists but nobody holds it: revoke it rather than leave it live.
		rcl, rerr := g.newClient(g.APIURL, t.Token)
		if rerr == nil {
			_, rerr = rcl.RevokeCurrentToken(g.ctx)
		}
		if rerr != nil {
			return fmt.Errorf("%w (the assumed token %s... could not be revoked: %v; it expires at %s)", err, t.Prefix, rerr, when(t.ExpiresAt, "-"))
		}
		return err
	}
	if g.JSON {
		return g.printJSON(t.TokenInfo) // not the secret: it is in the credentials file
	}
	fmt.Fprintf(g.out, "Acting as %s until %s (token %s...). Undo with: rillctl sudo user unassume\n", t.RepresentingEmail, when(t.ExpiresAt, "-"), t.Prefix)
	if explicit {
		fmt.Fprintf(g.errOut, "rillctl: note: --token/RILLCTL_TOKEN wins over the stored token: unset RILLCTL_TOKEN (and drop --token) for later commands to act as %s\n", t.RepresentingEmail)
	}
	return nil
}

// SudoUnassumeCmd is `rillctl sudo user unassume`, after Rill's cli/cmd/sudo/user/unassume.go:
// the assumed token is revoked and the backup becomes the stored token again.
type SudoUnassumeCmd struct{}

// Help says what is undone.
func (c *SudoUnassumeCmd) Help() string {
	return `Revokes the assumed token stored in rillctl's credentials file (whatever --token or RILLCTL_TOKEN
say) and restores the token stored before "rillctl sudo user assume"; with none stored before,
the credentials file is removed. A token already revoked or expired is not an error: it is
removed all the same.`
}

// Run unassumes.
func (c *SudoUnassumeCmd) Run(g *Globals) error {
	stored, have, err := loadCredentials()
	if err != nil {
		return err
	}
	if !have {
		return errors.New("you are not acting as another user: rillctl has no stored token")
	}
	// Work on the stored token, whatever --token/RILLCTL_TOKEN say.
	g.Token = stored.Token
	if stored.URL != "" {
		g.APIURL = stored.URL
	}
	cl, err := g.client()
	if err != nil {
		return err
	}
	var e *client.Error
	w, err := cl.Whoami(g.ctx)
	gone := errors.As(err, &e) && e.Status == http.StatusUnauthorized // revoked or expired already
	switch {
	case err != nil && !gone:
		return err
	case err == nil && w.AssumedBy == "":
		return fmt.Errorf("you are not acting as another user: the stored token is %s's own", w.Subject)
	case gone && stored.BackupToken == "":
		return fmt.Errorf("the stored token is not valid any more (%v) and there is no token to go back to: run rillctl login", err)
	}
	if !gone {
		if _, err := cl.RevokeCurrentToken(g.ctx); err != nil && !(errors.As(err, &e) && e.Status == http.StatusUnauthorized) {
			return fmt.Errorf("revoke the assumed token: %w", err)
		}
	}
	if stored.BackupToken == "" {
		if err := removeCredentials(); err != nil {
			return err
		}
	} else if err := saveCredentials(credentials{URL: stored.URL, Token: stored.BackupToken}); err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(map[string]string{"unassumed": w.Subject})
	}
	// A token already revoked or expired cannot say whom it acted as.
	who := "another user (the assumed token was already revoked or expired)"
	if w.Subject != "" {
		who = w.Subject
	}
	if stored.BackupToken == "" {
		fmt.Fprintf(g.out, "Stopped acting as %s; no stored token is left.\n", who)
		return nil
	}
	fmt.Fprintf(g.out, "Stopped acting as %s; back to the token stored before.\n", who)
	return nil
}
