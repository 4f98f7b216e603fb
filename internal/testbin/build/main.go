// Command build builds and caches the other projects' commands shoal's
// tests run (package testbin), so a test that finds them missing does not
// have to: `go run ./internal/testbin/build ipfs-cluster`. While it runs
// it holds the cache's build lock, and the tests that need the binaries
// wait for it instead of skipping; CI starts it in the background before
// the suite.
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/shoalnet/shoal/internal/testbin"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: go run ./internal/testbin/build NAME (one of: %s)\n", names())
		os.Exit(2)
	}
	s, ok := testbin.Specs[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "build: no spec %q: use one of %s\n", os.Args[1], names())
		os.Exit(2)
	}
	os.Setenv(s.OptIn, "1") // running this command is the opt-in
	bins, err := testbin.Build(context.Background(), s, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	fmt.Println(strings.Join(bins, "\n"))
}

func names() string {
	var ns []string
	for n := range testbin.Specs {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return strings.Join(ns, ", ")
}
