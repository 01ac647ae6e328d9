// Command rillctl manages rill-authd's service accounts, user tokens, orgs, projects and users
// through its admin API.
package main

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/term"

	"github.com/rill-authd/rill-authd/ctl"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// A terminal, not any character device: /dev/null is one too, and prompting there reads EOF.
	tty := term.IsTerminal(int(os.Stdin.Fd()))
	os.Exit(ctl.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, tty, version))
}
