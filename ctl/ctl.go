// Package ctl is rillctl's command tree (kong): service accounts and their tokens, user tokens,
// and the org, project, user and audit commands that make those flows possible from nothing.
// It talks to rill-authd only through adminapi/client, so rillctl links no server code.
package ctl

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/adminapi/client"
)

// Globals are the flags every command takes, and where it reads and writes.
type Globals struct {
	// No default: an unset --api-url means "the server rillctl login signed in to", else defaultAPIURL.
	APIURL string `name:"api-url" env:"RILLCTL_API_URL" help:"URL of rill-authd's admin API (default: the one rillctl login used, else http://127.0.0.1:8080)."`
	Token  string `env:"RILLCTL_TOKEN" help:"Your rill_usr_ or rill_svc_ token (better set in RILLCTL_TOKEN than on the command line; default: the one rillctl login stored)."`
	JSON   bool   `name:"json" help:"Print JSON instead of text."`

	CAFile         string `name:"ca-file" env:"RILLCTL_CA_FILE" type:"path" placeholder:"FILE" help:"PEM CA to trust for rill-authd's TLS certificate (an https --api-url; default: the system's CAs)."`
	ClientCertFile string `name:"client-cert-file" env:"RILLCTL_CLIENT_CERT_FILE" type:"path" placeholder:"FILE" help:"PEM client certificate, for a daemon that requires one (--tls-client-ca-file)."`
	ClientKeyFile  string `name:"client-key-file" env:"RILLCTL_CLIENT_KEY_FILE" type:"path" placeholder:"FILE" help:"PEM private key of --client-cert-file."`

	ctx    context.Context
	in     *bufio.Reader // one reader for every prompt: each would otherwise buffer ahead
	out    io.Writer
	errOut io.Writer // notes that are not the answer (stdout stays what a script reads)
	isTTY  bool

	storedURL string // set by resolve when stored credentials exist for another server than --api-url
	// stored is set by resolve when the command uses the token in the credentials file, for
	// storedTokenHint to say where a refused token came from.
	stored *credentials
}

// defaultAPIURL is the admin API of a daemon started with its defaults on this machine.
const defaultAPIURL = "http://127.0.0.1:8080"

// resolve settles which server and token a command uses: --api-url/RILLCTL_API_URL and
// --token/RILLCTL_TOKEN when given, else what `rillctl login` stored. A stored token is only
// ever sent to the server that issued it: with another --api-url it is not used, so pointing
// rillctl at a new URL cannot leak it there.
func (g *Globals) resolve() error {
	if g.Token == "" {
		if _, err := credentialsPath(); err == nil { // no HOME and no XDG_CONFIG_HOME: nothing stored
			c, ok, err := loadCredentials()
			if err != nil {
				return err
			}
			if ok {
				switch {
				case g.APIURL == "" && c.URL != "":
					g.APIURL, g.Token, g.stored = c.URL, c.Token, &c
				case c.URL == "" || sameAPIURL(g.APIURL, c.URL):
					g.Token, g.stored = c.Token, &c
				default:
					g.storedURL = c.URL
				}
			}
		}
	}
	if g.APIURL == "" {
		g.APIURL = defaultAPIURL
	}
	return nil
}

// storedTokenHint explains a 401 to a command that used the stored token: nothing else on the
// line says that the revoked or expired token is the one in the credentials file, nor what
// replaces it (a new login, or going back from an assumed user's token).
func (g *Globals) storedTokenHint(err error) error {
	var e *client.Error
	if g.stored == nil || !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
		return err
	}
	path, _ := credentialsPath()
	if g.stored.BackupToken != "" {
		return fmt.Errorf("%w: the token of rillctl sudo user assume, stored in %s (run rillctl sudo user unassume to go back to your own)", err, path)
	}
	return fmt.Errorf("%w: the token stored in %s (run rillctl login again, or set RILLCTL_TOKEN; if it was a user's you assumed, rillctl sudo user unassume)", err, path)
}

// sameAPIURL says whether two API URLs name the same server root (a trailing slash aside).
func sameAPIURL(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

func (g *Globals) client() (*client.Client, error) {
	if err := g.resolve(); err != nil {
		return nil, err
	}
	if err := checkAPIURL("--api-url", g.APIURL); err != nil {
		return nil, err
	}
	if g.Token == "" {
		if g.storedURL != "" {
			return nil, fmt.Errorf("no token for %s: rillctl login's stored token is for %s (run rillctl login --api-url %s, or set RILLCTL_TOKEN)", g.APIURL, g.storedURL, g.APIURL)
		}
		return nil, errors.New("no token: run rillctl login, or set RILLCTL_TOKEN or pass --token (the bootstrap token is printed on rill-authd's first start)")
	}
	return g.newClient(g.APIURL, g.Token)
}

// newClient is a client of apiURL with tok (empty: none), over TLS as the flags say.
func (g *Globals) newClient(apiURL, tok string) (*client.Client, error) {
	if g.CAFile == "" && g.ClientCertFile == "" && g.ClientKeyFile == "" {
		return client.New(apiURL, tok), nil
	}
	cfg, err := client.TLSConfig(g.CAFile, g.ClientCertFile, g.ClientKeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w (--ca-file, --client-cert-file, --client-key-file)", err)
	}
	return client.New(apiURL, tok, client.WithTLSConfig(cfg)), nil
}

// checkAPIURL refuses an --api-url (or the flag named, rillctl login's --url) that cannot be
// the root of rill-authd's admin API: not http(s), or one that ends in the API's own /v1 (every
// request would go to /v1/v1/...).
func checkAPIURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http:// or https:// URL (such as http://127.0.0.1:8080)", flag, s)
	}
	if p := strings.TrimRight(u.Path, "/"); p == "/v1" || strings.HasSuffix(p, "/v1") {
		root := *u
		root.Path = strings.TrimSuffix(p, "/v1")
		return fmt.Errorf("%s %s: give the server's root URL (%s), without /v1: rillctl adds the API's paths itself", flag, s, root.String())
	}
	return nil
}

// apiURLHint explains an answer that did not come from rill-authd's API (which answers in
// JSON): --api-url (or the flag named) points at something else, or below the server's root.
// An HTML page (the web console's, at an --api-url ending in /ui/) is named, not pasted. An
// error it explained already (rillctl login explains its --url) is left as it is.
func apiURLHint(err error, flag, apiURL string) error {
	var e *client.Error
	var h hinted
	switch {
	case errors.As(err, &h):
	case errors.As(err, &e) && e.HTML:
		root := "the server's root, such as http://127.0.0.1:8080, the address of rill-authd's --http-addr"
		if u, perr := url.Parse(apiURL); perr == nil {
			if i := strings.Index(u.Path+"/", "/ui/"); i >= 0 {
				u.Path, u.RawQuery, u.Fragment = u.Path[:i], "", ""
				root = "the server's root, " + u.String() + ", not the web console's /ui/"
			}
		}
		return hinted{fmt.Errorf("%w: %s %s should be %s", err, flag, apiURL, root)}
	case errors.As(err, &e) && e.Status == 404 && e.Code == 0:
		return hinted{fmt.Errorf("%w (no rill-authd admin API answers at %s %s: it should be the server's root, such as http://127.0.0.1:8080, the address of rill-authd's --http-addr)", err, flag, apiURL)}
	}
	return err
}

// hinted is an error apiURLHint explained.
type hinted struct{ error }

func (h hinted) Unwrap() error { return h.error }

// envHint names the environment variable that gives a missing required flag (--org:
// RILLCTL_ORG), which kong's "missing flags" does not.
func envHint(err error) string {
	var pe *kong.ParseError
	msg := err.Error()
	if !strings.HasPrefix(msg, "missing flags: ") || !errors.As(err, &pe) || pe.Context == nil {
		return ""
	}
	var hints []string
	for _, f := range pe.Context.Flags() {
		if f.Required && len(f.Envs) > 0 && strings.Contains(msg, "--"+f.Name+"=") {
			hints = append(hints, fmt.Sprintf("pass --%s or set %s", f.Name, f.Envs[0]))
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return ": " + strings.Join(hints, "; ")
}

// suffixHint names the flags that end in an unknown flag's name (--name: --display-name; --role:
// --org-role or --project-role), which kong's "did you mean", by edit distance, does not find.
func suffixHint(err error) string {
	var pe *kong.ParseError
	name, ok := strings.CutPrefix(err.Error(), "unknown flag --")
	if !ok || strings.ContainsAny(name, " ,") || !errors.As(err, &pe) || pe.Context == nil {
		return ""
	}
	var found []string
	for _, f := range pe.Context.Flags() {
		if strings.HasSuffix(f.Name, "-"+name) {
			found = append(found, f.Name)
		}
	}
	switch len(found) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(", did you mean %q?", "--"+found[0])
	}
	for i, f := range found {
		found[i] = strconv.Quote("--" + f)
	}
	return ", did you mean one of " + strings.Join(found, ", ") + "?"
}

// minutesHint says what --ttl-minutes takes when it got something else: a newcomer writes a
// duration (1h, 7d) as rill-authd's own flags take, and kong answers "expected a valid 64 bit int".
func minutesHint(err error) string {
	if strings.HasPrefix(err.Error(), "--ttl-minutes: expected") {
		return ": give whole minutes, such as 60 (an hour), 1440 (a day) or 10080 (a week)"
	}
	return ""
}

// tlsHint adds what to do to a failure to speak with the server that the user can fix with a
// flag: TLS on one side only, a missing CA or client certificate, or the gRPC port for the HTTP one.
func tlsHint(err error) error {
	var unknownCA x509.UnknownAuthorityError
	switch msg := err.Error(); {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w (pass the CA that signed rill-authd's certificate with --ca-file or RILLCTL_CA_FILE)", err)
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate"):
		return fmt.Errorf("%w (rill-authd requires a client certificate: --client-cert-file and --client-key-file, or RILLCTL_CLIENT_CERT_FILE and RILLCTL_CLIENT_KEY_FILE)", err)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w (rill-authd serves plain HTTP there: use an http:// --api-url)", err)
	case strings.Contains(msg, "Client sent an HTTP request to an HTTPS server"): // Go's answer on a TLS port
		return fmt.Errorf("%w (the server speaks TLS: use https:// in --api-url)", err)
	case strings.Contains(msg, `malformed HTTP response "\x00\x00`), // an HTTP/2 frame: a gRPC port's answer
		strings.Contains(msg, "readLoopPeekFailLocked"): // the same frame, sent before our request was
		return fmt.Errorf("%w (the server speaks HTTP/2 frames, as a gRPC port does: --api-url is rill-authd's --http-addr, not its --grpc-addr)", err)
	}
	return err
}

// call runs one API call and prints its answer: as JSON with --json, else with text.
func call[T any](g *Globals, do func(*client.Client) (T, error), text func(T)) error {
	cl, err := g.client()
	if err != nil {
		return err
	}
	v, err := do(cl)
	if err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(v)
	}
	text(v)
	return nil
}

func (g *Globals) printJSON(v any) error {
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (g *Globals) table(header string, rows [][]string) {
	tw := tabwriter.NewWriter(g.out, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// OrgFlag is the org a command acts in.
type OrgFlag struct {
	Org string `env:"RILLCTL_ORG" required:"" help:"Org to act in (default from RILLCTL_ORG)."`
}

// CLI is rillctl's command line.
type CLI struct {
	Globals
	// No env tag: without kong.DefaultEnvars, env:"-" names a variable "-" ("($-)" in help).
	Version kong.VersionFlag `help:"Print the version and exit."`

	Service ServiceCmd   `cmd:"" help:"Manage service accounts: tokens for production systems that outlive their creator."`
	Tokens  TokenCmd     `cmd:"" name:"token" help:"Manage your user tokens (personal access tokens)."`
	Org     OrgCmd       `cmd:"" help:"Manage orgs (superusers)."`
	Project ProjectCmd   `cmd:"" help:"Manage projects of an org."`
	User    UserCmd      `cmd:"" help:"Manage users and their roles."`
	Public  PublicURLCmd `cmd:"" name:"public-url" help:"Manage public URLs (magic tokens) of a project."`
	Audit   AuditCmd     `cmd:"" help:"Read the audit log (superusers)."`
	Whoami  WhoamiCmd    `cmd:"" help:"Show who your token is."`
	Login   LoginCmd     `cmd:"" help:"Sign in: approve a code in the web console and keep the token rillctl receives (used when no --token or RILLCTL_TOKEN is given)."`
	Logout  LogoutCmd    `cmd:"" help:"Revoke the token rillctl login stored, and forget it."`
	Admin   AdminCmd     `cmd:"" help:"Daemon administration (superusers)."`
	Sudo    SudoCmd      `cmd:"" help:"Act as another user (superusers)."`
}

// Main runs rillctl with args and returns its exit code.
func Main(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer, isTTY bool, version string) int {
	var cli CLI
	exit := -1
	parser, err := kong.New(&cli,
		kong.Name("rillctl"),
		kong.Description("Manage rill-authd's service accounts, user tokens, orgs, projects and users."),
		kong.Writers(out, errOut),
		kong.Exit(func(code int) { exit = code; panic(exitNow{}) }),
		kong.Vars{"version": version},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintf(errOut, "rillctl: %v\n", err)
		return 2
	}
	var kctx *kong.Context
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(exitNow); !ok {
					panic(r)
				}
			}
		}()
		kctx, err = parser.Parse(args)
	}()
	if exit >= 0 {
		return exit
	}
	if err != nil {
		fmt.Fprintf(errOut, "rillctl: %s%s%s%s (see %s)\n", strings.ReplaceAll(err.Error(), "\n", " "), envHint(err), minutesHint(err), suffixHint(err), helpFor(err, "rillctl"))
		return 2
	}
	cli.Globals.ctx, cli.Globals.in, cli.Globals.out, cli.Globals.errOut, cli.Globals.isTTY = ctx, bufio.NewReader(in), out, errOut, isTTY
	if err := kctx.Run(&cli.Globals); err != nil {
		fmt.Fprintf(errOut, "rillctl: %s\n", oneLine(cli.Globals.storedTokenHint(apiURLHint(tlsHint(err), "--api-url", cli.APIURL))))
		return 1
	}
	return 0
}

type exitNow struct{}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// parseAttributes reads an --attributes value: a JSON object, with the place of any error.
func parseAttributes(s string) (map[string]any, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("invalid --attributes JSON at character %d: %v", syn.Offset, err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("invalid --attributes JSON: it ends early (at character %d)", len(s))
		}
		return nil, fmt.Errorf("invalid --attributes JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid --attributes JSON at character %d: data after the object", dec.InputOffset()+1)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("invalid --attributes: want a JSON object like '{\"region\":\"us-west\"}', got %s", jsonType(v))
	}
	return m, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}

// compactJSON prints attributes as the docs show them: {"k":"v"}, keys sorted.
func compactJSON(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "?"
	}
	return string(b)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

const timeLayout = "2006-01-02 15:04"

func when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.Local().Format(timeLayout)
}

// prompt asks for a line on a terminal.
func (g *Globals) prompt(q string) (string, error) {
	fmt.Fprint(g.out, q)
	line, err := g.in.ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(g.out)
		if errors.Is(err, io.EOF) {
			return "", errors.New("no answer: stdin ended (pass the value as a flag; see --help)")
		}
		return "", fmt.Errorf("read answer: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// helpFor is the --help to point a usage mistake at: that of the command it was made in.
func helpFor(err error, app string) string {
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if n := pe.Context.Selected(); n != nil {
			return n.FullPath() + " --help"
		}
	}
	return app + " --help"
}
