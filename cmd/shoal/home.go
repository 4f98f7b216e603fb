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

// writeHomeFile writes one of the home's small record files (api,
// daemon.pid) whole or not at all: a client reading it while the daemon
// writes sees the old file or the new one, never half an address. The
// temporary name is unique, so two daemons racing on one home cannot
// interleave their bytes (the home's LOCK decides which one runs).
func writeHomeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path) // CreateTemp made it 0600
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
