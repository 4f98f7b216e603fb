package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
)

// clientCommand builds a command that talks to the daemon; run gets a
// connected client.
func clientCommand(use, short, long string, args cobra.PositionalArgs, run func(cmd *cobra.Command, c *api.Client, args []string) error) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, f)
			if err != nil {
				return err
			}
			return run(cmd, c, args)
		},
	}
	addClientFlags(cmd, f)
	return cmd
}

// idOutput is `shoal id --json`.
type idOutput struct {
	ID        string   `json:"id"`
	Addresses []string `json:"addresses"`
	API       string   `json:"api"`
	Gateway   string   `json:"gateway"`
}

func newIDCmd(g *globalFlags) *cobra.Command {
	return clientCommand("id", "print the daemon's peer ID, addresses and URLs", "", cobra.NoArgs,
		func(cmd *cobra.Command, c *api.Client, _ []string) error {
			res, err := c.ID(cmd.Context())
			if err != nil {
				return err
			}
			id := idOutput{ID: res.ID, Addresses: nonNilSlice(res.Addresses), API: res.API, Gateway: res.Gateway}
			out := cmd.OutOrStdout()
			if g.json {
				return writeJSON(out, id)
			}
			fmt.Fprintf(out, "peer ID:   %s\n", id.ID)
			fmt.Fprintf(out, "API:       %s\n", id.API)
			fmt.Fprintf(out, "gateway:   %s\n", orNone(id.Gateway))
			fmt.Fprintln(out, "addresses:")
			for _, a := range id.Addresses {
				fmt.Fprintf(out, "  %s\n", a)
			}
			return nil
		})
}

func newPeersCmd(g *globalFlags) *cobra.Command {
	return clientCommand("peers", "list connected peers", "", cobra.NoArgs,
		func(cmd *cobra.Command, c *api.Client, _ []string) error {
			peers, err := c.Peers(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json {
				return writeJSON(out, nonNilSlice(peers))
			}
			if len(peers) == 0 {
				fmt.Fprintln(out, "no connected peers (connect one with `shoal connect MULTIADDR`)")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tADDRESS\tTRANSPORT\tLATENCY\tIN\tOUT")
			for _, p := range peers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f ms\t%s\t%s\n", p.ID, p.Address, p.Transport, p.LatencyMS, humanBytes(p.BytesIn), humanBytes(p.BytesOut))
			}
			return tw.Flush()
		})
}

func newConnectCmd(g *globalFlags) *cobra.Command {
	return clientCommand("connect MULTIADDR", "connect the daemon to a peer",
		`connect dials a peer by a multiaddr that ends in /p2p/<peer id>, such as
/ip4/192.0.2.7/tcp/4040/p2p/12D3KooW… (shoal id prints these).`, cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *api.Client, args []string) error {
			res, err := c.Connect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "connected to %s\n", res.Addr)
			return err
		})
}

// lsEntry is one line of `shoal ls --json`.
type lsEntry struct {
	CID    string `json:"cid"`
	Name   string `json:"name,omitempty"`
	Size   uint64 `json:"size"`
	Pinned bool   `json:"pinned"`
}

func newLsCmd(g *globalFlags) *cobra.Command {
	return clientCommand("ls", "list the content roots the daemon holds", "", cobra.NoArgs,
		func(cmd *cobra.Command, c *api.Client, _ []string) error {
			roots, err := c.Ls(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json {
				list := make([]lsEntry, 0, len(roots))
				for _, r := range roots {
					list = append(list, lsEntry{r.CID, r.Name, r.Size, r.Pinned})
				}
				return writeJSON(out, list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CID\tNAME\tSIZE\tPINNED\tANNOUNCED")
			for _, r := range roots {
				announced := "not yet"
				if !r.LastProvided.IsZero() {
					announced = r.LastProvided.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.CID, orDash(r.Name), humanBytes(r.Size), yesNo(r.Pinned), announced)
			}
			return tw.Flush()
		})
}

func newPinCmd(g *globalFlags, pin bool) *cobra.Command {
	use, short, call := "pin CID", "keep content from garbage collection", (*api.Client).Pin
	if !pin {
		use, short, call = "unpin CID", "let garbage collection remove content", (*api.Client).Unpin
	}
	return clientCommand(use, short, "", cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *api.Client, args []string) error {
			k, err := parseCIDArg(args[0])
			if err != nil {
				return err
			}
			res, err := call(c, cmd.Context(), k)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			verb := "pinned"
			if !res.Pinned {
				verb = "unpinned"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, res.CID)
			return err
		})
}

func newGCCmd(g *globalFlags) *cobra.Command {
	return clientCommand("gc", "remove unpinned blocks from the daemon's store", "", cobra.NoArgs,
		func(cmd *cobra.Command, c *api.Client, _ []string) error {
			res, err := c.GC(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed %d blocks (%s)\n", res.Removed, humanBytes(uint64(max(res.Bytes, 0))))
			return err
		})
}

func newStatCmd(g *globalFlags) *cobra.Command {
	return clientCommand("stat [CID[/PATH]]", "show the daemon's state, or what a CID is",
		`Without an argument, stat shows the node: peers, store, transfers. With a
CID (optionally followed by a path inside a directory) it shows its type and
size, fetching the root block if it is not held locally.`, cobra.MaximumNArgs(1),
		func(cmd *cobra.Command, c *api.Client, args []string) error {
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				p, err := cidPathArg(args[0])
				if err != nil {
					return err
				}
				st, err := c.StatPath(cmd.Context(), p)
				if err != nil {
					return err
				}
				if g.json {
					return writeJSON(out, st)
				}
				return printCIDStat(out, st)
			}
			st, err := c.Stat(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(out, st)
			}
			return printNodeStat(out, st)
		})
}

func printCIDStat(out io.Writer, st api.CIDStat) error {
	fmt.Fprintf(out, "CID:     %s\n", st.CID)
	if st.Name != "" {
		fmt.Fprintf(out, "name:    %s\n", st.Name)
	}
	fmt.Fprintf(out, "type:    %s\nsize:    %s\n", st.Type, humanBytes(st.Size))
	if st.Type == api.TypeDirectory {
		fmt.Fprintf(out, "entries: %d\n", st.Entries)
	}
	_, err := fmt.Fprintf(out, "root:    %s\npinned:  %s\n", yesNo(st.Root), yesNo(st.Pinned))
	return err
}

func printNodeStat(out io.Writer, st api.Stat) error {
	capacity := "unlimited"
	if st.CapacityBytes > 0 {
		capacity = humanBytes(uint64(st.CapacityBytes))
	}
	uptime := "unknown"
	if !st.Started.IsZero() {
		uptime = time.Since(st.Started).Round(time.Second).String()
	}
	_, err := fmt.Fprintf(out, `peer ID:        %s
uptime:         %s
network:        %s (DHT %s, %d in routing table)
peers:          %d
store:          %d blocks, %s of %s
roots:          %d
transfers:      %d active
provide queue:  %d
`, st.ID, uptime, orNone(st.Network), orNone(st.DHTMode), st.RoutingTableSize, st.Peers,
		st.StoreBlocks, humanBytes(uint64(max(st.StoreBytes, 0))), capacity, st.Roots, st.TransfersActive, st.ProvideQueue)
	return err
}

// parseCIDArg catches, before it goes to the daemon, a CID argument that
// would otherwise reach the API as a malformed route (an empty one). The
// daemon judges the CID itself and says what is wrong with it.
func parseCIDArg(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("no CID given: pass one such as bafybei… (see `shoal ls`)")
	}
	return s, nil
}

// cidPathArg checks CID[/path]: a CID and path segments without "." or
// "..".
func cidPathArg(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "/ipfs/")
	first, rest, _ := strings.Cut(s, "/")
	k, err := parseCIDArg(first)
	if err != nil {
		return "", err
	}
	if rest == "" {
		return k, nil
	}
	for _, seg := range strings.Split(strings.Trim(rest, "/"), "/") {
		if seg == "." || seg == ".." || seg == "" {
			return "", fmt.Errorf("path %q has a %q segment: give a path inside the directory, such as %s/docs/a.txt", s, seg, k)
		}
	}
	return k + "/" + strings.Trim(rest, "/"), nil
}

// humanBytes prints a byte count as everything shoal prints one.
var humanBytes = node.FormatBytes

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orDash is s, or "-" for an empty table cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
