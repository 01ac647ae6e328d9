package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// PublicURLCmd is `rillctl public-url`, as Rill's `rill public-url` (rilldata/rill
// cli/cmd/publicurl/: create, list, delete).
type PublicURLCmd struct {
	Create PublicURLCreateCmd `cmd:"" help:"Create a public URL."`
	List   PublicURLListCmd   `cmd:"" help:"List all public URLs."`
	Delete PublicURLDeleteCmd `cmd:"" help:"Delete a public URL."`
}

// PublicURLCreateCmd is `rillctl public-url create [<project-name>] <explore>` with the flags of
// Rill's (cli/cmd/publicurl/create.go: --project, --ttl-minutes, --filter, --fields). Rill's CLI
// asks the runtime for the explore's metrics view to put the filter on; rillctl does not reach
// the runtime, so the filter is on --metrics-view (default "*": every metrics view, the key
// Rill's admin service reads that way).
type PublicURLCreateCmd struct {
	Org          string   `env:"RILLCTL_ORG" help:"Organization (default from RILLCTL_ORG)."`
	Project      string   `help:"Project name."`
	TTLMinutes   int64    `name:"ttl-minutes" help:"Duration until the token expires (use 0 for no expiry)."`
	Filter       string   `help:"Limit access to the provided filter (json)."`
	Fields       []string `help:"Limit access to the provided fields."`
	MetricsView  string   `name:"metrics-view" default:"*" help:"The metrics view --filter applies to (* for every one)."`
	Canvas       bool     `help:"The resource is a canvas, not an explore."`
	DisplayName  string   `name:"display-name" help:"A name to recognise the URL by."`
	AllowNetwork []string `name:"allow-network" sep:"none" help:"Open the URL only from this network (CIDR); repeatable." placeholder:"CIDR"`
	AllowOrigin  []string `name:"allow-origin" sep:"none" help:"Open the URL only in pages of this origin (https://shop.example.com: an embed on a customer's site); repeatable." placeholder:"URL"`
	Args         []string `arg:"" name:"project-name> <explore" help:"[<project-name>] <explore>"`
}

// Run issues the public URL and prints it (the token when the daemon has no --frontend-url,
// with a note on stderr saying what to configure).
func (c *PublicURLCreateCmd) Run(g *Globals) error {
	if len(c.Args) > 2 {
		return errors.New("expected [<project-name>] <explore>: too many arguments")
	}
	project := c.Project
	if len(c.Args) == 2 {
		project = c.Args[0]
	}
	resource := c.Args[len(c.Args)-1]
	if c.Org == "" {
		return errors.New("--org is required (or RILLCTL_ORG)")
	}
	if project == "" {
		return errors.New("a project is required: give it as the first argument or with --project")
	}
	if c.TTLMinutes < 0 {
		return errors.New("--ttl-minutes must be 0 (no expiry) or more")
	}
	kind := "rill.runtime.v1.Explore"
	if c.Canvas {
		kind = "rill.runtime.v1.Canvas"
	}
	req := apiv1.MagicTokenRequest{Resources: []apiv1.ResourceName{{Type: kind, Name: resource}}, TTLMinutes: c.TTLMinutes,
		DisplayName: c.DisplayName, AllowedNetworks: c.AllowNetwork, AllowedOrigins: c.AllowOrigin}
	for _, f := range c.Fields {
		for _, p := range strings.Split(f, ",") {
			if p = strings.TrimSpace(p); p != "" {
				req.Fields = append(req.Fields, p)
			}
		}
	}
	if c.Filter != "" {
		if !json.Valid([]byte(c.Filter)) {
			return errors.New("failed to parse filter expression: not valid JSON")
		}
		req.MetricsViewFilters = map[string]json.RawMessage{c.MetricsView: json.RawMessage(c.Filter)}
	}
	return call(g, func(cl *client.Client) (apiv1.IssuedMagicToken, error) {
		return cl.IssueMagicToken(g.ctx, c.Org, project, req)
	}, func(t apiv1.IssuedMagicToken) {
		if t.URL != "" {
			fmt.Fprintf(g.out, "%s\n", t.URL)
			return
		}
		// The token alone still works (stdout stays one line a script can read); say once, on
		// stderr, what makes it a URL.
		fmt.Fprintf(g.out, "%s\n", t.Token)
		fmt.Fprintf(g.errOut, "rillctl: this is the public URL's token, not its URL: rill-authd has no --frontend-url (the URL of Rill's web app); "+
			"with it, the URL is <frontend-url>/%s/%s/-/share/<token>\n", c.Org, project)
	})
}

// PublicURLListCmd is `rillctl public-url list [<project-name>]`.
type PublicURLListCmd struct {
	Org      string `env:"RILLCTL_ORG" help:"Organization (default from RILLCTL_ORG)."`
	Project  string `help:"Project name."`
	ProjectA string `arg:"" optional:"" name:"project-name" help:"Project name."`
}

// Run lists the project's live public URLs, as Rill's printer does (cli/pkg/printer:
// PrintMagicAuthTokens), then the note that URLs cannot be shown again.
func (c *PublicURLListCmd) Run(g *Globals) error {
	project := c.Project
	if c.ProjectA != "" {
		project = c.ProjectA
	}
	if c.Org == "" {
		return errors.New("--org is required (or RILLCTL_ORG)")
	}
	if project == "" {
		return errors.New("a project is required: give it as the argument or with --project")
	}
	return call(g, func(cl *client.Client) ([]apiv1.MagicToken, error) { return cl.ListMagicTokens(g.ctx, c.Org, project) }, func(ts []apiv1.MagicToken) {
		if len(ts) == 0 {
			fmt.Fprintln(g.out, "No URLs found")
		} else {
			rows := make([][]string, 0, len(ts))
			var notes [][2]string
			for _, t := range ts {
				var res []string
				for _, r := range t.Resources {
					res = append(res, r.Name)
				}
				mark := ""
				if t.BeyondPolicy != "" {
					mark = "*"
				}
				rows = append(rows, []string{t.ID, dash(strings.Join(res, ",")), dash(filterText(t.MetricsViewFilters)), dash(t.CreatedByUserEmail),
					when(t.CreatedAt, "-"), when(t.LastUsedAt, "-"), when(t.ExpiresAt, "-") + mark, dash(t.LastUsedIP)})
				notes = append(notes, [2]string{t.ID, t.BeyondPolicy})
			}
			// Rill's columns, then where the last use came from (its user agent: --json); a URL
			// beyond its org's token policy is marked * with a footnote, as token list marks.
			g.table("ID\tRESOURCE\tFILTER\tCREATED BY\tCREATED ON\tLAST USED ON\tEXPIRES ON\tLAST USED FROM", rows)
			footnotes(g, notes)
		}
		fmt.Fprintln(g.out)
		fmt.Fprintln(g.out, "NOTE: For security reasons, the actual URLs can't be displayed after creation.")
	})
}

// filterText is a list row's filters: metrics view=expression, by metrics view.
func filterText(fs map[string]json.RawMessage) string {
	keys := make([]string, 0, len(fs))
	for k := range fs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		var b bytes.Buffer
		if json.Compact(&b, fs[k]) != nil { // the API sends it indented; a row wants one line
			b.Reset()
			b.Write(fs[k])
		}
		out = append(out, k+"="+b.String())
	}
	return strings.Join(out, " ")
}

// PublicURLDeleteCmd is `rillctl public-url delete <id>`: like Rill's, it prints nothing.
type PublicURLDeleteCmd struct {
	ID string `arg:"" help:"The public URL's id (public-url list shows it)."`
}

// Run revokes the public URL.
func (c *PublicURLDeleteCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.MagicToken, error) { return cl.RevokeMagicToken(g.ctx, c.ID) }, func(apiv1.MagicToken) {})
}
