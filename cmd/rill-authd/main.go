// Command rill-authd is the Rill auth sidecar. All the work is in package daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var cfg daemon.Config
	kong.Parse(&cfg, daemon.KongOptions(version)...)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "rill-authd: %v\n", err)
		os.Exit(1)
	}
}
