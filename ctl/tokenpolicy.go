package ctl

import (
	"errors"
	"fmt"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// OrgTokenPolicyCmd is `rillctl org token-policy`: how long the org's tokens may live.
type OrgTokenPolicyCmd struct {
	Show OrgTokenPolicyShowCmd `cmd:"" help:"Show the org's token lifetime policy (org admins, superusers)."`
	Set  OrgTokenPolicySetCmd  `cmd:"" help:"Change the org's token lifetime policy; flags not given keep their value (org admins, superusers)."`
}

// OrgTokenPolicyShowCmd is `rillctl org token-policy show`.
type OrgTokenPolicyShowCmd struct{ OrgFlag }

// Run shows the policy.
func (c *OrgTokenPolicyShowCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.TokenPolicy, error) { return cl.GetTokenPolicy(g.ctx, c.Org) }, func(p apiv1.TokenPolicy) {
		printTokenPolicy(g, c.Org, p)
	})
}

// OrgTokenPolicySetCmd is `rillctl org token-policy set`. The API replaces the whole policy,
// so set reads it first and changes only what a flag names.
type OrgTokenPolicySetCmd struct {
	OrgFlag
	MaxUserTokenTTLMinutes    *int64 `name:"max-user-token-ttl-minutes" help:"Longest life of a user token of a member of the org, in minutes (0: no limit). A user in several orgs is held to the strictest." placeholder:"MINUTES"`
	MaxServiceTokenTTLMinutes *int64 `name:"max-service-token-ttl-minutes" help:"Longest life of a service token (and of a runtime JWT a service asks for), in minutes (0: no limit)." placeholder:"MINUTES"`
	MaxMagicTokenTTLMinutes   *int64 `name:"max-magic-token-ttl-minutes" help:"Longest life of a public URL, in minutes (0: no limit)." placeholder:"MINUTES"`
	RequireExpiry             *bool  `name:"require-expiry" negatable:"" help:"Every token must expire (--no-require-expiry: tokens without a limit may live forever)."`
}

// Run changes the policy.
func (c *OrgTokenPolicySetCmd) Run(g *Globals) error {
	if c.MaxUserTokenTTLMinutes == nil && c.MaxServiceTokenTTLMinutes == nil && c.MaxMagicTokenTTLMinutes == nil && c.RequireExpiry == nil {
		return errors.New("nothing to change: give --max-user-token-ttl-minutes, --max-service-token-ttl-minutes, --max-magic-token-ttl-minutes or --[no-]require-expiry")
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"--max-user-token-ttl-minutes", c.MaxUserTokenTTLMinutes}, {"--max-service-token-ttl-minutes", c.MaxServiceTokenTTLMinutes},
		{"--max-magic-token-ttl-minutes", c.MaxMagicTokenTTLMinutes}} {
		if f.v != nil && *f.v < 0 {
			return fmt.Errorf("%s must be 0 (no limit) or more, not %d", f.name, *f.v)
		}
	}
	return call(g, func(cl *client.Client) (apiv1.TokenPolicy, error) {
		p, err := cl.GetTokenPolicy(g.ctx, c.Org)
		if err != nil {
			return p, err
		}
		set := func(dst *int64, v *int64) {
			if v != nil {
				*dst = *v
			}
		}
		set(&p.MaxUserTokenTTLMinutes, c.MaxUserTokenTTLMinutes)
		set(&p.MaxServiceTokenTTLMinutes, c.MaxServiceTokenTTLMinutes)
		set(&p.MaxMagicTokenTTLMinutes, c.MaxMagicTokenTTLMinutes)
		if c.RequireExpiry != nil {
			p.RequireExpiry = *c.RequireExpiry
		}
		return cl.SetTokenPolicy(g.ctx, c.Org, p)
	}, func(p apiv1.TokenPolicy) {
		fmt.Fprintf(g.out, "Updated the token policy of org %q.\n", c.Org)
		printTokenPolicy(g, c.Org, p)
	})
}

func printTokenPolicy(g *Globals, org string, p apiv1.TokenPolicy) {
	limit := func(m int64) string {
		if m == 0 {
			if p.RequireExpiry {
				return "must expire, no limit"
			}
			return "no limit"
		}
		return "at most " + minutesWords(m)
	}
	yes := "no"
	if p.RequireExpiry {
		yes = "yes"
	}
	g.table("TOKENS\tLIFETIME", [][]string{
		{"user tokens", limit(p.MaxUserTokenTTLMinutes)},
		{"service tokens", limit(p.MaxServiceTokenTTLMinutes)},
		{"public URLs", limit(p.MaxMagicTokenTTLMinutes)},
		{"expiry required", yes},
	})
}

// minutesWords is m minutes in the largest whole unit, with the minutes: "1 day (1440 minutes)".
func minutesWords(m int64) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case m%(24*60) == 0:
		return fmt.Sprintf("%s (%d minutes)", unit(m/(24*60), "day"), m)
	case m%60 == 0:
		return fmt.Sprintf("%s (%d minutes)", unit(m/60, "hour"), m)
	}
	return unit(m, "minute")
}

// beyondFootnotes prints, under a token list, one line per token that outlives its org's token
// policy (marked * in the list), so the reference columns stay as they are.
func beyondFootnotes(g *Globals, ts []apiv1.TokenInfo) {
	notes := make([][2]string, 0, len(ts))
	for _, t := range ts {
		notes = append(notes, [2]string{t.Prefix + "...", t.BeyondPolicy})
	}
	footnotes(g, notes)
}

// footnotes prints the footnote lines of beyondFootnotes: one per (name, words) whose words are
// set, after a blank line.
func footnotes(g *Globals, notes [][2]string) {
	n := 0
	for _, x := range notes {
		if x[1] == "" {
			continue
		}
		if n == 0 {
			fmt.Fprintln(g.out)
		}
		n++
		fmt.Fprintf(g.out, "* %s %s (beyond the token policy: it works until it expires or is revoked)\n", x[0], x[1])
	}
}

// beyondMark marks a token beyond its org's token policy in a list's column ("Never*").
func beyondMark(t apiv1.TokenInfo) string {
	if t.BeyondPolicy != "" {
		return "*"
	}
	return ""
}
