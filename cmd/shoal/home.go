package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// addHomeFlag registers --home on the root, for the daemon, init and every
// client command.
func addHomeFlag(root *cobra.Command) {
	root.PersistentFlags().String("home", "", "the node's home directory (default $SHOAL_HOME, else $XDG_DATA_HOME/shoal or ~/.local/share/shoal)")
}

// homeDir is the home a command works on: --home, else defaultHome().
func homeDir(cmd *cobra.Command) (string, error) {
	home := ""
	if f := cmd.Flags().Lookup("home"); f != nil {
		home = f.Value.String()
	}
	if home == "" {
		home = defaultHome()
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("home directory %s: %w", home, err)
	}
	return abs, nil
}

// defaultHome is the home directory used without --home: $SHOAL_HOME, or
// shoal under the user's data directory ($XDG_DATA_HOME, else
// ~/.local/share).
func defaultHome() string {
	if h := os.Getenv("SHOAL_HOME"); h != "" {
		return h
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "shoal")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "shoal")
	}
	return ".shoal"
}
