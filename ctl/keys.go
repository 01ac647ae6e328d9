package ctl

import (
	"fmt"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// RotateSigningKeyCmd is `rillctl admin rotate-signing-key`.
type RotateSigningKeyCmd struct {
	Now bool `help:"Emergency: the new key signs at once (the key that signs must stop now, say it leaked). Rill runtimes that cached the JWKS may refuse new tokens until they refetch it (up to 5 minutes). A scheduled rotation still waiting is dropped."`
}

// Run rotates the key.
func (c *RotateSigningKeyCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.RotateResult, error) { return cl.RotateSigningKey(g.ctx, c.Now) }, func(r apiv1.RotateResult) {
		if c.Now {
			fmt.Fprintf(g.out, "New signing key %s signs now.\n", r.KID)
		} else {
			fmt.Fprintf(g.out, "New signing key %s is in the JWKS now and signs from %s (in %s).\n", r.KID, when(r.ActivatesAt, "-"),
				time.Until(r.ActivatesAt).Round(time.Second))
		}
		switch {
		case r.Replaces != "" && c.Now:
			fmt.Fprintf(g.out, "%s no longer signs; it verifies until the last token it signed expires. If it is compromised: rillctl admin retire-signing-key %s\n",
				r.Replaces, r.Replaces)
		case r.Replaces != "":
			fmt.Fprintf(g.out, "%s signs until then, and verifies until the last token it signed expires.\n", r.Replaces)
		}
		if len(r.Retired) > 0 {
			fmt.Fprintf(g.out, "Retired the scheduled key(s) it replaces, which had signed nothing: %s.\n", strings.Join(r.Retired, ", "))
		}
	})
}

// RetireSigningKeyCmd is `rillctl admin retire-signing-key`.
type RetireSigningKeyCmd struct {
	KID string `arg:"" help:"The kid of the key to retire (rillctl admin signing-keys lists them)."`
}

// Run retires the key.
func (c *RetireSigningKeyCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.SigningKey, error) { return cl.RetireSigningKey(g.ctx, c.KID) }, func(k apiv1.SigningKey) {
		fmt.Fprintf(g.out, "Retired signing key %s (at %s): it is out of the JWKS. Tokens it signed are refused here now, "+
			"and by Rill runtimes once they refetch the JWKS (at the latest within their hourly refresh).\n", k.KID, when(k.RetiredAt, "-"))
	})
}

// SigningKeysCmd is `rillctl admin signing-keys`.
type SigningKeysCmd struct{}

// Run lists the keys: each key's state and whether it is in the JWKS are the server's (the
// console shows the same); --json adds the state in words.
func (c *SigningKeysCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.SigningKey, error) { return cl.SigningKeys(g.ctx) }, func(ks []apiv1.SigningKey) {
		rows := [][]string{}
		for _, k := range ks {
			rows = append(rows, []string{k.KID, k.State, yesNo(k.InJWKS), when(k.CreatedAt, "-"), when(k.ActivatesAt, "-"), when(k.SignsUntil, "-"),
				when(k.VerifiesUntil, "-"), when(k.RetiredAt, "-")})
		}
		g.table("KID\tSTATE\tIN JWKS\tCREATED\tSIGNS FROM\tSIGNS UNTIL\tVERIFIES UNTIL\tRETIRED", rows)

	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
