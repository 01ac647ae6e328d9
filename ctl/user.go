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

// UserCmd is `rillctl user`.
type UserCmd struct {
	Create  UserCreateCmd  `cmd:"" help:"Create a user, optionally with roles in an org."`
	List    UserListCmd    `cmd:"" help:"List the users of an org (all users for superusers without --org)."`
	SetRole UserSetRoleCmd `cmd:"" name:"set-role" help:"Set a user's org role, or add, change or remove a project role."`
	Delete  UserDeleteCmd  `cmd:"" help:"Delete a user and revoke their tokens (superusers)."`

	SetResources   UserSetResourcesCmd   `cmd:"" name:"set-resources" help:"Set a user's project resources and restriction flag (overwrites existing list)."`
	ShowResources  UserShowResourcesCmd  `cmd:"" name:"show-resources" help:"Show the resources a user's project role is limited to."`
	ClearResources UserClearResourcesCmd `cmd:"" name:"clear-resources" help:"Lift the limit on a user's project role (as set-resources with nothing)."`
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
		// The API answers 201 either way. A new user's record is written with one time as both
		// created_at and updated_at; adding an existing user to an org updates their record,
		// so its updated_at moves past the created_at it keeps.
		if c.Org != "" && !u.UpdatedAt.Equal(u.CreatedAt) {
			fmt.Fprintf(g.out, "Added user %q to org %q.\n", u.Email, c.Org)
			return
		}
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
