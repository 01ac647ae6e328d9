// Command rill-authd is the Rill auth sidecar. All the work is in package daemon.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var cli daemon.CLI
	k := kong.Parse(&cli, append(daemon.KongOptions(version), kong.BindTo(ctx, (*context.Context)(nil)),
		kong.BindTo(io.Writer(os.Stderr), (*io.Writer)(nil)), kong.Bind(&cli))...)
	if err := k.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "rill-authd: %v\n", err)
		os.Exit(1)
	}
}
