package ctl

import (
	"fmt"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// OrgCmd is `rillctl org`.
type OrgCmd struct {
	Create OrgCreateCmd `cmd:"" help:"Create an org (superusers)."`
	List   OrgListCmd   `cmd:"" help:"List the orgs you can see."`
	// TokenPolicy is issue 27's token lifetime policy.
	TokenPolicy OrgTokenPolicyCmd `cmd:"" name:"token-policy" help:"Show or set how long the org's tokens may live (user tokens, service tokens, public URLs) and whether they must expire."`
	// SigninRules is issue 28's provisioning rules.
	SigninRules OrgSigninRulesCmd `cmd:"" name:"signin-rules" help:"Show or set who may sign in with an identity provider and join the org: email domains and provider groups, each with an org role."`
}

// OrgCreateCmd is `rillctl org create`.
type OrgCreateCmd struct {
	Name string `arg:"" help:"Org name: 1-40 characters of a-z, 0-9 and -."`
}

// Run creates the org.
func (c *OrgCreateCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.Org, error) { return cl.CreateOrg(g.ctx, c.Name) }, func(o apiv1.Org) {
		fmt.Fprintf(g.out, "Created org %q.\n", o.Name)
	})
}

// OrgListCmd is `rillctl org list`.
type OrgListCmd struct{}

// Run lists orgs.
func (c *OrgListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.Org, error) { return cl.ListOrgs(g.ctx) }, func(os []apiv1.Org) {
		rows := [][]string{}
		for _, o := range os {
			rows = append(rows, []string{o.Name, when(o.CreatedAt, "-")})
		}
		g.table("NAME\tCREATED", rows)
	})
}

// ProjectCmd is `rillctl project`.
type ProjectCmd struct {
	Create ProjectCreateCmd `cmd:"" help:"Create a project in an org."`
	List   ProjectListCmd   `cmd:"" help:"List an org's projects."`
}

// ProjectCreateCmd is `rillctl project create`.
type ProjectCreateCmd struct {
	OrgFlag
	Name string `arg:"" help:"Project name."`
}

// Run creates the project.
func (c *ProjectCreateCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.Project, error) { return cl.CreateProject(g.ctx, c.Org, c.Name) }, func(p apiv1.Project) {
		fmt.Fprintf(g.out, "Created project %q in org %q.\n", p.Name, p.Org)
	})
}

// ProjectListCmd is `rillctl project list`.
type ProjectListCmd struct{ OrgFlag }

// Run lists projects.
func (c *ProjectListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.Project, error) { return cl.ListProjects(g.ctx, c.Org) }, func(ps []apiv1.Project) {
		rows := [][]string{}
		for _, p := range ps {
			rows = append(rows, []string{p.Name, when(p.CreatedAt, "-")})
		}
		g.table("NAME\tCREATED", rows)
	})
}

// AuditCmd is `rillctl audit`.
type AuditCmd struct {
	List AuditListCmd `cmd:"" help:"List audit events, oldest first."`
}

// AuditListCmd is `rillctl audit list`.
type AuditListCmd struct {
	Since string `help:"Only events since this long ago (24h) or this RFC 3339 time."`
	Actor string `help:"Only events by this actor (user:EMAIL or service:ORG/NAME)."`
	Limit int    `help:"At most this many events." default:"100"`
}

// Run lists events.
func (c *AuditListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.AuditEvent, error) {
		return cl.ListAudit(g.ctx, c.Since, c.Actor, c.Limit)
	}, func(evs []apiv1.AuditEvent) {
		rows := [][]string{}
		for _, e := range evs {
			rows = append(rows, []string{e.Time.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Target, e.Outcome})
		}
		g.table("TIME\tACTOR\tACTION\tTARGET\tOUTCOME", rows)
	})
}

// WhoamiCmd is `rillctl whoami`.
type WhoamiCmd struct{}

// Run shows the caller.
func (c *WhoamiCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.Whoami, error) { return cl.Whoami(g.ctx) }, func(w apiv1.Whoami) {
		su := ""
		if w.Superuser {
			su = " (superuser)"
		}
		if w.AssumedBy != "" {
			su += " (assumed by " + w.AssumedBy + ")"
		}
		fmt.Fprintf(g.out, "%s %s%s\n", w.Kind, w.Subject, su)
	})
}

// AdminCmd is `rillctl admin`.
type AdminCmd struct {
	RotateSigningKey RotateSigningKeyCmd `cmd:"" name:"rotate-signing-key" help:"Add a signing key: in the JWKS at once, it signs runtime JWTs after the daemon's --signing-key-activation-delay (--now: at once); the key it replaces verifies until its last token expires."`
	RetireSigningKey RetireSigningKeyCmd `cmd:"" name:"retire-signing-key" help:"Take a compromised key out of the JWKS at once: tokens it signed are refused. The key that signs cannot be retired: rotate-signing-key --now first."`
	SigningKeys      SigningKeysCmd      `cmd:"" name:"signing-keys" help:"List the signing keys: kid, state (next, signing, verifying, expired, retired), created, when each signs from, until when it verifies, when it was retired."`
	Plugins          PluginsCmd          `cmd:"" help:"Show the attribute-source plugins and their health."`
	Backup           BackupCmd           `cmd:"" help:"Download a consistent backup of the store (Badger) while the daemon serves; rill-authd restore loads it."`
}

// PluginsCmd is `rillctl admin plugins`.
type PluginsCmd struct{}

// Run lists plugins.
func (c *PluginsCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.PluginStatus, error) { return cl.PluginStatus(g.ctx) }, func(ps []apiv1.PluginStatus) {
		rows := [][]string{}
		for _, p := range ps {
			state := "up"
			if !p.Healthy {
				state = "down"
			}
			rows = append(rows, []string{p.Name, state, fmt.Sprint(p.PID), fmt.Sprint(p.Restarts), fmt.Sprint(p.Calls), fmt.Sprint(p.Errors), dash(p.LastError)})
		}
		g.table("NAME\tSTATE\tPID\tRESTARTS\tCALLS\tERRORS\tLAST ERROR", rows)
	})
}
