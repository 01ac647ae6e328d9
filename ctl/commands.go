package ctl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// ServiceCmd is `rillctl service`.
type ServiceCmd struct {
	Create  ServiceCreateCmd  `cmd:"" help:"Create a service and print its access token."`
	List    ServiceListCmd    `cmd:"" help:"List the org's services."`
	Edit    ServiceEditCmd    `cmd:"" help:"Rename a service or replace its attributes."`
	SetRole ServiceSetRoleCmd `cmd:"" name:"set-role" help:"Set a service's org role, or add, change or remove a project role."`
	Show    ServiceShowCmd    `cmd:"" help:"Show a service, its roles, attributes and tokens."`
	Delete  ServiceDeleteCmd  `cmd:"" help:"Delete a service; its tokens stop working at once."`
	Token   ServiceTokenCmd   `cmd:"" help:"Issue, list or revoke a service's extra tokens."`
}

// ServiceCreateCmd is `rillctl service create`.
type ServiceCreateCmd struct {
	OrgFlag
	Name        string `arg:"" help:"Service name, unique in the org."`
	OrgRole     string `help:"Org role: admin, editor, viewer or guest." enum:"admin,editor,viewer,guest," default:""`
	Project     string `help:"Project to give a role on (with --project-role)."`
	ProjectRole string `help:"Project role: admin, editor or viewer." enum:"admin,editor,viewer," default:""`
	Attributes  string `help:"Custom attributes for security policies, a JSON object: '{\"region\":\"us-west\"}'." placeholder:"JSON"`
}

// Run creates the service.
func (c *ServiceCreateCmd) Run(g *Globals) error {
	req := apiv1.ServiceRequest{Name: c.Name, OrgRole: c.OrgRole, Project: c.Project, ProjectRole: c.ProjectRole}
	if c.Attributes != "" {
		attrs, err := parseAttributes(c.Attributes)
		if err != nil {
			return err
		}
		req.Attributes = attrs
	}
	if c.OrgRole == "" && c.Project == "" {
		return errors.New("give --org-role, or --project with --project-role: a service without a role can do nothing")
	}
	if (c.Project == "") != (c.ProjectRole == "") {
		return errors.New("--project and --project-role go together")
	}
	return call(g, func(cl *client.Client) (apiv1.ServiceCreated, error) { return cl.CreateService(g.ctx, c.Org, req) }, func(res apiv1.ServiceCreated) {
		fmt.Fprintf(g.out, "Created service %q in org %q.\n", res.Service.Name, res.Service.Org)
		fmt.Fprintf(g.out, "Access token: %s\n", res.Token.Token)
	})
}

// ServiceListCmd is `rillctl service list`.
type ServiceListCmd struct{ OrgFlag }

// Run lists services.
func (c *ServiceListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.Service, error) { return cl.ListServices(g.ctx, c.Org) }, func(ss []apiv1.Service) {
		rows := make([][]string, 0, len(ss))
		for _, s := range ss {
			rows = append(rows, []string{s.Name, dash(s.OrgRole), dash(strings.Join(sortedKeys(s.ProjectRoles), ",")), compactJSON(s.Attributes)})
		}
		g.table("NAME\tORG ROLE\tPROJECT ROLES\tATTRIBUTES", rows)
	})
}

// ServiceEditCmd is `rillctl service edit`.
type ServiceEditCmd struct {
	OrgFlag
	Name       string  `arg:"" help:"Service to edit."`
	NewName    string  `help:"New name of the service."`
	Attributes *string `help:"Replace the custom attributes with this JSON object ('{}' clears them)." placeholder:"JSON"`
}

// Run edits the service.
func (c *ServiceEditCmd) Run(g *Globals) error {
	var req apiv1.ServiceEdit
	req.NewName = c.NewName
	if c.Attributes != nil {
		attrs, err := parseAttributes(*c.Attributes)
		if err != nil {
			return err
		}
		req.Attributes = &attrs
	}
	if req.NewName == "" && req.Attributes == nil {
		return errors.New("nothing to change: give --new-name or --attributes")
	}
	return call(g, func(cl *client.Client) (apiv1.Service, error) { return cl.EditService(g.ctx, c.Org, c.Name, req) }, func(s apiv1.Service) {
		if c.NewName != "" {
			fmt.Fprintf(g.out, "Renamed service %q to %q.\n", c.Name, s.Name)
		}
		if c.Attributes != nil {
			fmt.Fprintf(g.out, "Updated attributes of service %q: %s\n", s.Name, compactJSON(s.Attributes))
		}
	})
}

// ServiceSetRoleCmd is `rillctl service set-role`.
type ServiceSetRoleCmd struct {
	OrgFlag
	Name        string `arg:"" help:"Service to change."`
	OrgRole     string `help:"New org role: admin, editor, viewer or guest." enum:"admin,editor,viewer,guest," default:""`
	Project     string `help:"Project whose role to set (with --project-role) or remove (with --remove)."`
	ProjectRole string `help:"Project role: admin, editor or viewer." enum:"admin,editor,viewer," default:""`
	Remove      bool   `help:"Remove the service's role on --project (or its org role, without --project)."`
}

// Run changes the role.
func (c *ServiceSetRoleCmd) Run(g *Globals) error {
	req := apiv1.RoleRequest{OrgRole: c.OrgRole, Project: c.Project, ProjectRole: c.ProjectRole, Remove: c.Remove}
	if err := checkRoleFlags(req); err != nil {
		return err
	}
	return call(g, func(cl *client.Client) (apiv1.Service, error) { return cl.SetServiceRole(g.ctx, c.Org, c.Name, req) }, func(s apiv1.Service) {
		fmt.Fprintln(g.out, roleMessage("service", c.Name, req))
	})
}

func checkRoleFlags(req apiv1.RoleRequest) error {
	switch {
	case req.Remove && (req.OrgRole != "" || req.ProjectRole != ""):
		return errors.New("--remove takes no role: use --project P --remove, or --remove alone for the org role")
	case req.Remove:
		return nil
	case req.OrgRole != "" && req.Project != "":
		return errors.New("give --org-role, or --project with --project-role, not both")
	case req.Project != "" && req.ProjectRole == "":
		return errors.New("--project needs --project-role (or --remove)")
	case req.Project == "" && req.ProjectRole != "":
		return errors.New("--project-role needs --project")
	case req.OrgRole == "" && req.Project == "":
		return errors.New("nothing to change: give --org-role, or --project with --project-role or --remove")
	}
	return nil
}

func roleMessage(kind, name string, req apiv1.RoleRequest) string {
	switch {
	case req.Remove && req.Project != "":
		return fmt.Sprintf("Removed the role of %s %q on project %q.", kind, name, req.Project)
	case req.Remove:
		return fmt.Sprintf("Removed the org role of %s %q.", kind, name)
	case req.Project != "":
		return fmt.Sprintf("Set the role of %s %q on project %q to %s.", kind, name, req.Project, req.ProjectRole)
	}
	return fmt.Sprintf("Set the org role of %s %q to %s.", kind, name, req.OrgRole)
}

// ServiceShowCmd is `rillctl service show`.
type ServiceShowCmd struct {
	OrgFlag
	Name string `arg:"" help:"Service to show."`
}

// Run shows the service.
func (c *ServiceShowCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.ServiceDetail, error) { return cl.ShowService(g.ctx, c.Org, c.Name) }, func(s apiv1.ServiceDetail) {
		var roles []string
		for _, p := range sortedKeys(s.ProjectRoles) {
			roles = append(roles, p+"="+s.ProjectRoles[p])
		}
		var toks []string
		for _, t := range s.Tokens {
			toks = append(toks, t.Prefix+"...")
		}
		fmt.Fprintf(g.out, "Name:           %s\n", s.Name)
		fmt.Fprintf(g.out, "Org:            %s\n", s.Org)
		fmt.Fprintf(g.out, "Org role:       %s\n", dash(s.OrgRole))
		fmt.Fprintf(g.out, "Project roles:  %s\n", dash(strings.Join(roles, ", ")))
		fmt.Fprintf(g.out, "Attributes:     %s\n", compactJSON(s.Attributes))
		fmt.Fprintf(g.out, "Created:        %s by %s\n", when(s.CreatedAt, "-"), dash(s.CreatedBy))
		fmt.Fprintf(g.out, "Updated:        %s\n", when(s.UpdatedAt, "-"))
		fmt.Fprintf(g.out, "Tokens:         %s\n", dash(strings.Join(toks, ", ")))
	})
}

// ServiceDeleteCmd is `rillctl service delete`.
type ServiceDeleteCmd struct {
	OrgFlag
	Name string `arg:"" help:"Service to delete."`
}

// Run deletes the service.
func (c *ServiceDeleteCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.Service, error) { return cl.DeleteService(g.ctx, c.Org, c.Name) }, func(s apiv1.Service) {
		fmt.Fprintf(g.out, "Deleted service %q from org %q; its tokens no longer work.\n", s.Name, s.Org)
	})
}

// ServiceTokenCmd is `rillctl service token`.
type ServiceTokenCmd struct {
	Issue  ServiceTokenIssueCmd  `cmd:"" help:"Give a service another token (for rotation)."`
	List   ServiceTokenListCmd   `cmd:"" help:"List a service's tokens."`
	Revoke ServiceTokenRevokeCmd `cmd:"" help:"Revoke one of a service's tokens."`
}

// ServiceTokenIssueCmd is `rillctl service token issue`.
type ServiceTokenIssueCmd struct {
	OrgFlag
	Name string `arg:"" help:"Service."`
}

// Run issues the token.
func (c *ServiceTokenIssueCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.IssuedToken, error) {
		return cl.IssueServiceToken(g.ctx, c.Org, c.Name)
	}, func(t apiv1.IssuedToken) {
		fmt.Fprintf(g.out, "Access token: %s\n", t.Token)
	})
}

// ServiceTokenListCmd is `rillctl service token list`.
type ServiceTokenListCmd struct {
	OrgFlag
	Name string `arg:"" help:"Service."`
}

// Run lists the tokens.
func (c *ServiceTokenListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.TokenInfo, error) {
		return cl.ListServiceTokens(g.ctx, c.Org, c.Name)
	}, func(ts []apiv1.TokenInfo) {
		rows := make([][]string, 0, len(ts))
		for _, t := range ts {
			rows = append(rows, []string{t.Prefix + "...", when(t.CreatedAt, "-"), when(t.LastUsedAt, "Never")})
		}
		g.table("ID\tCREATED\tLAST USED", rows)
	})
}

// ServiceTokenRevokeCmd is `rillctl service token revoke`.
type ServiceTokenRevokeCmd struct {
	OrgFlag
	Name    string `arg:"" help:"Service."`
	TokenID string `arg:"" name:"token-id" help:"Token id, its prefix as listed (at least 10 characters after rill_svc_), or the token."`
}

// Run revokes the token.
func (c *ServiceTokenRevokeCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.Revoked, error) {
		return cl.RevokeServiceToken(g.ctx, c.Org, c.Name, c.TokenID)
	}, func(r apiv1.Revoked) {
		fmt.Fprintf(g.out, "Revoked token %s... of service %q.\n", r.Revoked[0].Prefix, c.Name)
	})
}

// OrgCmd is `rillctl org`.
type OrgCmd struct {
	Create OrgCreateCmd `cmd:"" help:"Create an org (superusers)."`
	List   OrgListCmd   `cmd:"" help:"List the orgs you can see."`
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

// UserCmd is `rillctl user`.
type UserCmd struct {
	Create  UserCreateCmd  `cmd:"" help:"Create a user, optionally with roles in an org."`
	List    UserListCmd    `cmd:"" help:"List the users of an org (all users for superusers without --org)."`
	SetRole UserSetRoleCmd `cmd:"" name:"set-role" help:"Set a user's org role, or add, change or remove a project role."`
	Delete  UserDeleteCmd  `cmd:"" help:"Delete a user and revoke their tokens (superusers)."`
}

// UserCreateCmd is `rillctl user create`.
type UserCreateCmd struct {
	Email       string   `arg:"" help:"Email of the user."`
	Org         string   `env:"RILLCTL_ORG" help:"Org to create the user in, or to add them to if they exist (guest unless a role is given)."`
	DisplayName string   `help:"Display name."`
	OrgRole     string   `help:"Org role: admin, editor, viewer or guest." enum:"admin,editor,viewer,guest," default:""`
	Project     string   `help:"Project to give a role on (with --project-role)."`
	ProjectRole string   `help:"Project role: admin, editor or viewer." enum:"admin,editor,viewer," default:""`
	Groups      []string `help:"The user's groups in --org, comma separated (that org's security policies see them)."`
	Attributes  string   `help:"The user's custom attributes in --org, a JSON object." placeholder:"JSON"`
}

// Run creates the user.
func (c *UserCreateCmd) Run(g *Globals) error {
	req := apiv1.UserRequest{Email: c.Email, DisplayName: c.DisplayName, Org: c.Org, OrgRole: c.OrgRole,
		Project: c.Project, ProjectRole: c.ProjectRole, Groups: c.Groups}
	if c.Attributes != "" {
		attrs, err := parseAttributes(c.Attributes)
		if err != nil {
			return err
		}
		req.Attributes = attrs
	}
	if (c.Project == "") != (c.ProjectRole == "") {
		return errors.New("--project and --project-role go together")
	}
	return call(g, func(cl *client.Client) (apiv1.User, error) { return cl.CreateUser(g.ctx, req) }, func(u apiv1.User) {
		fmt.Fprintf(g.out, "Created user %q.\n", u.Email)
	})
}

// UserListCmd is `rillctl user list`.
type UserListCmd struct {
	Org string `env:"RILLCTL_ORG" help:"Org whose users to list."`
}

// Run lists users.
func (c *UserListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.User, error) { return cl.ListUsers(g.ctx, c.Org) }, func(us []apiv1.User) {
		rows := [][]string{}
		for _, u := range us {
			rows = append(rows, []string{u.Email, dash(u.DisplayName), orgRoles(u, c.Org), projectRoles(u, c.Org), userGroups(u, c.Org)})
		}
		g.table("EMAIL\tNAME\tORG ROLES\tPROJECT ROLES\tGROUPS", rows)
	})
}

func orgRoles(u apiv1.User, org string) string {
	if u.Superuser {
		return "superuser"
	}
	var out []string
	for _, o := range sortedKeys(u.OrgRoles) {
		if org == "" {
			out = append(out, o+"="+u.OrgRoles[o])
		} else if o == org {
			out = append(out, u.OrgRoles[o])
		}
	}
	return dash(strings.Join(out, ","))
}

// userGroups lists the groups org set for u, or (no org) every shown org's as org:group.
func userGroups(u apiv1.User, org string) string {
	if org != "" {
		return dash(strings.Join(u.Orgs[org].Groups, ","))
	}
	var out []string
	for _, o := range slices.Sorted(maps.Keys(u.Orgs)) {
		for _, g := range u.Orgs[o].Groups {
			out = append(out, o+":"+g)
		}
	}
	return dash(strings.Join(out, ","))
}

func projectRoles(u apiv1.User, org string) string {
	var out []string
	for _, k := range sortedKeys(u.ProjectRoles) {
		if org == "" {
			out = append(out, k+"="+u.ProjectRoles[k])
		} else if p, ok := strings.CutPrefix(k, org+"/"); ok {
			out = append(out, p+"="+u.ProjectRoles[k])
		}
	}
	return dash(strings.Join(out, ","))
}

// UserSetRoleCmd is `rillctl user set-role`.
type UserSetRoleCmd struct {
	OrgFlag
	Email       string `arg:"" help:"Email of the user."`
	OrgRole     string `help:"New org role: admin, editor, viewer or guest." enum:"admin,editor,viewer,guest," default:""`
	Project     string `help:"Project whose role to set (with --project-role) or remove (with --remove)."`
	ProjectRole string `help:"Project role: admin, editor or viewer." enum:"admin,editor,viewer," default:""`
	Remove      bool   `help:"Remove the user's role on --project (or from the org altogether, without --project)."`
}

// Run changes the role.
func (c *UserSetRoleCmd) Run(g *Globals) error {
	req := apiv1.RoleRequest{Org: c.Org, OrgRole: c.OrgRole, Project: c.Project, ProjectRole: c.ProjectRole, Remove: c.Remove}
	if err := checkRoleFlags(req); err != nil {
		return err
	}
	return call(g, func(cl *client.Client) (apiv1.User, error) { return cl.SetUserRole(g.ctx, c.Email, req) }, func(u apiv1.User) {
		fmt.Fprintln(g.out, roleMessage("user", u.Email, req))
	})
}

// UserDeleteCmd is `rillctl user delete`.
type UserDeleteCmd struct {
	Email string `arg:"" help:"Email of the user."`
}

// Run deletes the user.
func (c *UserDeleteCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.User, error) { return cl.DeleteUser(g.ctx, c.Email) }, func(u apiv1.User) {
		fmt.Fprintf(g.out, "Deleted user %q; their tokens no longer work.\n", u.Email)
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
		fmt.Fprintf(g.out, "%s %s%s\n", w.Kind, w.Subject, su)
	})
}

// AdminCmd is `rillctl admin`.
type AdminCmd struct {
	RotateSigningKey RotateSigningKeyCmd `cmd:"" name:"rotate-signing-key" help:"Make a new key sign ephemeral JWTs; the old one keeps verifying until its last token expires."`
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

// RotateSigningKeyCmd is `rillctl admin rotate-signing-key`.
type RotateSigningKeyCmd struct{}

// Run rotates the key.
func (c *RotateSigningKeyCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.RotateResult, error) { return cl.RotateSigningKey(g.ctx) }, func(r apiv1.RotateResult) {
		fmt.Fprintf(g.out, "New signing key %s; retired %s.\n", r.KID, dash(strings.Join(r.Retired, ", ")))
	})
}
