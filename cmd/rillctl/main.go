// Command rillctl manages rill-authd's service accounts, user tokens, orgs, projects and users
// through its admin API.
package main

import (
	"context"
	"io"
	"log"
	"os"
	"os/signal"

	"golang.org/x/term"

	"github.com/rill-authd/rill-authd/ctl"
)

var version = "dev"

func main() {
	// net/http logs to the standard logger when a server speaks before it is asked (a gRPC
	// port's HTTP/2 settings frame): rillctl says what went wrong in its own one line
	// (ctl.tlsHint), so that line alone reaches stderr.
	log.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// A terminal, not any character device: /dev/null is one too, and prompting there reads EOF.
	tty := term.IsTerminal(int(os.Stdin.Fd()))
	os.Exit(ctl.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, tty, version))
}
