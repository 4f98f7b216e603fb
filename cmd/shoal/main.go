// Command shoal is the CLI of the shoal peer-to-peer content distribution
// node: `shoal daemon` runs a node, the other commands are thin clients of
// its HTTP API, and `shoal cid` hashes content locally without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run executes one CLI invocation; it is main without the process, so tests
// can drive the CLI in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		if f := root.PersistentFlags().Lookup("json"); f != nil && f.Value.String() == "true" {
			_ = writeJSON(stderr, jsonError(err))
		} else {
			fmt.Fprintln(stderr, "shoal:", err)
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// globalFlags are the flags every command shares.
type globalFlags struct {
	json bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "shoal",
		Short: "peer-to-peer content distribution: share, fetch and serve content by CID",
		Long: `shoal moves content between machines by content identifier (CID).
Every machine runs a daemon; content shared on any node is announced in a
Kademlia DHT and fetched in parallel from every peer that holds any of it.
CIDs are identical to Kubo's unixfs-v1-2025 import profile.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON instead of text; an error is then {\"error\": \"...\", \"code\": \"...\"} on stderr, with a non-zero exit")
	root.AddCommand(newCIDCmd(g), newVersionCmd(g), newDaemonCmd(g), newInitCmd(g), newDemoCmd(g), newSimCmd(g), newRepoCmd(g))
	addHomeFlag(root)
	setVersionFlag(root)
	root.AddCommand(newShareCmd(g), newFetchCmd(g), newConnectCmd(g), newPeersCmd(g), newIDCmd(g),
		newLsCmd(g), newPinCmd(g, true), newPinCmd(g, false), newGCCmd(g), newStatCmd(g), newStopCmd(g))
	return root
}
