package testbin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCachedAndOptIn: a cached binary is returned without building; a
// missing one with building opt-in and not asked for is ErrNotBuilt,
// naming the binary, the cache and the command that builds it.
func TestCachedAndOptIn(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache) // os.UserCacheDir on macOS
	s := Spec{Name: "tool-v1", Module: "example.com/tool", Version: "v1.0.0", Commands: []string{"cmd/a", "cmd/b"},
		OptIn: "TESTBIN_TEST_BUILD", Cost: "an hour", Rerun: "TESTBIN_TEST_BUILD=1 go test"}
	t.Setenv(s.OptIn, "")
	dir, err := s.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Build(context.Background(), s, t.Logf)
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("with b missing and building not asked for: %v, want ErrNotBuilt", err)
	}
	for _, want := range []string{"no b in " + dir, "example.com/tool v1.0.0", "an hour", "TESTBIN_TEST_BUILD=1 go test"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bins, err := Build(context.Background(), s, t.Logf)
	if err != nil || len(bins) != 2 || bins[0] != filepath.Join(dir, "a") || bins[1] != filepath.Join(dir, "b") {
		t.Fatalf("cached: %v, %v; want %s/{a,b}", bins, err, dir)
	}
}
