package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchitecturePageCurrent fails when docs/architecture.md's generated
// section differs from what the code says, so the map cannot go stale.
func TestArchitecturePageCurrent(t *testing.T) {
	var b strings.Builder
	if err := run(true, &b); err != nil {
		t.Fatal(err)
	}
	root, _, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), b.String()) {
		t.Fatalf("docs/architecture.md is stale: run `go run ./docs/archmap` and commit the result; the generated section should read:\n%s", b.String())
	}
}

func TestViolations(t *testing.T) {
	for _, tc := range []struct {
		r    rule
		deps []string
		want string
	}{
		{rule{from: "content", forbidden: []string{"*"}}, nil, ""},
		{rule{from: "content", forbidden: []string{"*"}}, []string{"blockstore"}, "blockstore"},
		{rule{from: "web", forbidden: []string{"dht", "protocol"}}, []string{"content", "dht", "node"}, "dht"},
		{rule{from: "web", forbidden: []string{"dht", "protocol"}}, []string{"content", "node"}, ""},
	} {
		if got := strings.Join(violations(tc.r, tc.deps), ","); got != tc.want {
			t.Errorf("violations(%v, %v) = %q, want %q", tc.r, tc.deps, got, tc.want)
		}
	}
}

func TestSpliceNeedsMarkers(t *testing.T) {
	if _, err := splice("no markers here", "x"); err == nil {
		t.Fatal("splice accepted a page without markers")
	}
	got, err := splice("a\n"+beginMarker+"\nold\n"+endMarker+"\nb\n", beginMarker+"\nnew\n"+endMarker+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + beginMarker + "\nnew\n" + endMarker + "\nb\n"; got != want {
		t.Fatalf("splice = %q, want %q", got, want)
	}
}
