package testbin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testSpec is an opt-in Spec of commands (not asked for) whose cache,
// under a temporary user cache directory, exists and is empty.
func testSpec(t *testing.T, commands ...string) (Spec, string) {
	t.Helper()
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache) // os.UserCacheDir on macOS
	s := Spec{Name: "tool-v1", Module: "example.com/tool", Version: "v1.0.0", Commands: commands,
		OptIn: "TESTBIN_TEST_BUILD", Cost: "an hour", Rerun: "TESTBIN_TEST_BUILD=1 go test"}
	t.Setenv(s.OptIn, "")
	dir, err := s.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// TestCachedAndOptIn: a cached binary is returned without building; a
// missing one with building opt-in and not asked for is ErrNotBuilt,
// naming the binary, the cache and the command that builds it.
func TestCachedAndOptIn(t *testing.T) {
	s, dir := testSpec(t, "cmd/a", "cmd/b")
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), s, t.Logf)
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

// TestWaitsForBuildInProgress: with building opt-in and not asked for, a
// build another process holds the cache's lock for is waited for (CI's
// background build), and its binaries are returned; a build that ends
// without them is an error saying so, not a skip.
func TestWaitsForBuildInProgress(t *testing.T) {
	s, dir := testSpec(t, "cmd/a")
	for _, writes := range []bool{true, false} {
		unlock, err := lockBuild(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if !building(dir) {
			t.Fatal("building() = false while the lock is held")
		}
		done, waiting, returned := make(chan struct{}), make(chan struct{}, 1), make(chan struct{})
		logf := func(f string, a ...any) {
			if strings.HasPrefix(f, "waiting for the build") {
				waiting <- struct{}{}
			}
			t.Logf(f, a...)
		}
		go func() {
			defer close(done)
			select {
			case <-waiting: // Build saw the build in progress and waits for it
			case <-returned: // it did not wait: the checks below fail
				unlock()
				return
			}
			if writes {
				if err := os.WriteFile(filepath.Join(dir, "a"), []byte("#!/bin/true\n"), 0o755); err != nil {
					t.Error(err)
				}
			}
			unlock()
		}()
		bins, err := Build(context.Background(), s, logf)
		close(returned)
		<-done
		switch {
		case writes && (err != nil || len(bins) != 1 || bins[0] != filepath.Join(dir, "a")):
			t.Fatalf("waiting for a build that writes a: %v, %v", bins, err)
		case !writes && err == nil:
			t.Fatalf("a build that ended without b: %v, want an error", bins)
		}
		if writes {
			s.Commands = []string{"cmd/b"} // the second round waits for a build that leaves no b
		} else if errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "left no b") {
			t.Fatalf("a build that ended without b: %v, want an error naming b, not ErrNotBuilt", err)
		}
	}
	if building(dir) {
		t.Fatal("building() = true with no build running")
	}
}

// TestWaitForBuildInProgressEnds: a wait for another process's build ends
// with ctx, as ErrStillBuilding (a caller skips on it), not as a hang or a
// not-built error.
func TestWaitForBuildInProgressEnds(t *testing.T) {
	s, dir := testSpec(t, "cmd/a")
	unlock, err := lockBuild(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	logf := func(f string, a ...any) {
		if strings.HasPrefix(f, "waiting for the build") {
			cancel() // the caller's wait bound runs out while it waits
		}
		t.Logf(f, a...)
	}
	bins, err := Build(ctx, s, logf)
	if !errors.Is(err, ErrStillBuilding) || errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Build while another build holds the lock and ctx ends = %v, %v; want ErrStillBuilding", bins, err)
	}
}
