// Command rillctl manages rill-authd's service accounts, user tokens, orgs, projects and users
// through its admin API.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/rill-authd/rill-authd/ctl"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fi, err := os.Stdin.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	os.Exit(ctl.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, tty, version))
}
