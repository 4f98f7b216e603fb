package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
)

// newRepoCmd is `shoal repo`: checks of the daemon's own storage.
func newRepoCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "check the daemon's block store",
	}
	cmd.AddCommand(newRepoVerifyCmd(g))
	return cmd
}

func newRepoVerifyCmd(g *globalFlags) *cobra.Command {
	return clientCommand("verify", "rehash every stored block against its CID and check every pin",
		`verify asks the daemon to read every block it stores and check it against
its CID. Blocks that do not match (or whose file is gone) are removed, so
the content they belong to is fetched again the next time it is needed;
pins with missing blocks are listed, with the command that completes them.
Exits 1 when damaged blocks were found, 0 otherwise.`, cobra.NoArgs,
		func(cmd *cobra.Command, c *api.Client, _ []string) error {
			rep, err := c.RepoVerify(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				printVerifyReport(cmd, rep)
			}
			if rep.Damaged() {
				return &exitError{code: 1, err: fmt.Errorf("repo verify removed %d corrupt and %d vanished blocks: fetch or pin the affected content again (see above)",
					len(rep.Corrupt), len(rep.Vanished))}
			}
			return nil
		})
}

func printVerifyReport(cmd *cobra.Command, rep api.VerifyReport) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "checked %d blocks (%s), %s\n", rep.Checked, humanBytes(uint64(rep.Bytes)), plural(rep.Pins, "pin"))
	for _, c := range rep.Corrupt {
		fmt.Fprintf(out, "corrupt, removed: %s\n", c)
	}
	for _, c := range rep.Vanished {
		fmt.Fprintf(out, "vanished, forgotten: %s\n", c)
	}
	for _, c := range rep.RefsGone {
		fmt.Fprintf(out, "its file no longer holds it (moved, truncated or edited), forgotten: %s\n", c)
	}
	for _, c := range rep.Relisted {
		fmt.Fprintf(out, "pinned root put back in the catalogue: %s\n", c)
	}
	for _, p := range rep.Incomplete {
		fmt.Fprintf(out, "pin %s is missing %s: run \"shoal pin %s\" to fetch them\n", p.CID, plural(p.Missing, "block"), p.CID)
	}
	if !rep.Damaged() && len(rep.Incomplete) == 0 {
		fmt.Fprintln(out, "no damage found")
	}
}
