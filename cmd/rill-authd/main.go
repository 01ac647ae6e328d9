// Command rill-authd is the Rill auth sidecar. All the work is in package daemon.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes: 1 for a failure of the work, 2 for a mistake on the command line (as rillctl).
const (
	exitFailed = 1
	exitUsage  = 2
)

// exitNow unwinds kong's parse when it asks to exit (after --help or --version).
type exitNow struct{}

// run parses args and runs the chosen command. A mistake on the command line is one line on
// stderr, with kong's "did you mean" hint, and exit 2; the usage is printed only for --help.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cli daemon.CLI
	exit := -1
	parser, err := kong.New(&cli, append(daemon.KongOptions(version),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code; panic(exitNow{}) }),
		kong.Help(help),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.BindTo(stderr, (*io.Writer)(nil)), kong.Bind(&cli))...)
	if err != nil {
		fmt.Fprintf(stderr, "rill-authd: %v\n", err)
		return exitFailed
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
		msg, see := err.Error(), helpFor(err, "rill-authd")
		var ce *daemon.ConfigError
		if errors.As(err, &ce) {
			msg = ce.Error() // kong put the flag's summary in front; the message names the key
		}
		if cmd := misspeltCommand(err, parser); cmd != "" {
			msg, see = fmt.Sprintf("%s, did you mean %q?", msg, cmd), "rill-authd --help"
		}
		fmt.Fprintf(stderr, "rill-authd: %s (see %s)\n", strings.ReplaceAll(msg, "\n", " "), see)
		return exitUsage
	}
	if err := kctx.Run(); err != nil {
		fmt.Fprintf(stderr, "rill-authd: %v\n", err)
		return exitFailed
	}
	return 0
}

// misspeltCommand is the command a mistyped first word was meant to be (`rill-authd restor`),
// or "". kong suggests one only where no command is the default: here serve is, so the word
// reaches serve as an unexpected argument.
func misspeltCommand(err error, parser *kong.Kong) string {
	word, ok := strings.CutPrefix(err.Error(), "unexpected argument ")
	if !ok || strings.Contains(word, " ") {
		return ""
	}
	best, dist := "", 3 // a near miss only
	for _, c := range parser.Model.Children {
		if d := daemon.EditDistance(word, c.Name); !c.Hidden && d < dist {
			best, dist = c.Name, d
		}
	}
	return best
}

// help prints kong's help for a command; at the top level, where `serve` is the default
// command, it prints serve's flags (what `rill-authd --data-dir x` takes) and the commands one
// line each.
func help(options kong.HelpOptions, ctx *kong.Context) error {
	if ctx.Selected() != nil {
		return kong.DefaultHelpPrinter(options, ctx)
	}
	app := ctx.Model
	w := ctx.Stdout
	fmt.Fprintf(w, "Usage: %s [serve] [flags]\n       %s <command> [flags]\n\n", app.Name, app.Name)
	fmt.Fprintf(w, "%s\n\nCommands:\n", wrap(app.Help, 80))
	for _, c := range app.Children {
		if c.Hidden {
			continue
		}
		line := firstClause(c.Help)
		if c == app.DefaultCmd {
			line += " (the default command)"
		}
		fmt.Fprintf(w, "  %-12s %s\n", c.Name, line)
	}
	fmt.Fprintf(w, "\nRun \"%s <command> --help\" for a command's flags. Those of serve, the default command:\n", app.Name)

	// serve's own help, without its usage line: kong's printer on a trace of `serve`.
	serve, err := kong.Trace(ctx.Kong, []string{"serve"})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	saved := serve.Stdout
	serve.Stdout = &buf
	options.NoAppSummary = true
	err = kong.DefaultHelpPrinter(options, serve)
	serve.Stdout = saved
	if err != nil {
		return err
	}
	// Drop the command's one-line help ("Run the daemon ..."), already listed above.
	out := buf.String()
	if i := strings.Index(out, "\nFlags:"); i >= 0 {
		out = out[i:]
	}
	_, err = io.WriteString(w, out)
	return err
}

// firstClause is a command's help up to its first ";" or sentence end: one line in a list.
func firstClause(s string) string {
	if i := strings.IndexAny(s, ";"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	if i := strings.LastIndex(s, " ("); i >= 0 && strings.HasSuffix(s, ")") {
		s = s[:i]
	}
	return s
}

// wrap breaks s into lines of at most width characters, at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		switch {
		case i == 0:
		case n+1+len(word) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
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
