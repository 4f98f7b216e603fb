package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalnet/shoal/node"
)

// TestHomeFileModes: a daemon started on a fresh home keeps it from other
// local users: the home directory is 0700 and the key, the config, the
// roots catalogue and the api file are 0600.
func TestHomeFileModes(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	d := startDaemon(t, home)
	src := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(src, randomBytes(1000, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cli("share", src) // writes the roots catalogue
	checkMode(t, home, 0o700)
	for _, name := range []string{node.KeyFile, node.ConfigFile, "roots.json", APIFile} {
		checkMode(t, filepath.Join(home, name), 0o600)
	}
	// Nothing in the home may be readable by others through a looser
	// mode than its parent allows: with the home 0700 that holds for every
	// file below; check no file is world-writable all the same.
	err := filepath.WalkDir(home, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o002 != 0 {
			t.Errorf("%s is world-writable (%v)", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}
