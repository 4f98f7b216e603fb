package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteHomeFile: the record replaces the old one whole, is private to
// the user, and leaves no temporary file behind, also when it fails.
func TestWriteHomeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, APIFile)
	if err := os.WriteFile(path, []byte("http://127.0.0.1:1/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "http://127.0.0.1:5080/\n"
	if err := writeHomeFile(path, []byte(want)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("read back %q, %v; want %q", got, err, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := writeHomeFile(filepath.Join(dir, "missing", APIFile), []byte(want)); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("home holds %v; want only %s", names, APIFile)
	}
}
