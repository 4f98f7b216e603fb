package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/content"
)

func newCIDCmd(g *globalFlags) *cobra.Command {
	var workers int
	cmd := &cobra.Command{
		Use:   "cid PATH",
		Short: "print the CID of a file or directory without storing anything",
		Long: `cid hashes a file, directory tree or symlink exactly as Kubo does with its
unixfs-v1-2025 import profile (CIDv1, sha2-256, 1 MiB chunks, raw leaves,
HAMT directories past 256 KiB) and prints the root CID as the last line of
stdout. Nothing is stored and no daemon is needed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if _, err := os.Lstat(path); err != nil {
				return fmt.Errorf("cannot read %s: %w (check the path and its permissions)", path, unwrapPathError(err))
			}
			res, err := content.ImportPath(cmd.Context(), path, nil, content.ImportOptions{Workers: workers})
			if err != nil {
				return fmt.Errorf("hashing %s: %w", path, err)
			}
			out := cmd.OutOrStdout()
			if g.json {
				return json.NewEncoder(out).Encode(struct {
					CID    string `json:"cid"`
					Size   uint64 `json:"size"`
					Blocks int    `json:"blocks"`
				}{res.CID.String(), res.Size, res.Blocks})
			}
			_, err = fmt.Fprintln(out, res.CID)
			return err
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 0, "hashing goroutines (0 = one per CPU)")
	return cmd
}

// unwrapPathError drops the *os.PathError wrapper, whose text repeats the
// path the caller already names.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
