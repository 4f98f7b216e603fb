package content

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzResolvePath checks path parsing: accepted paths split into valid
// names that round-trip, rejected ones are ErrInvalidPath, and resolving
// any string over a valid tree fails only with the documented errors.
func FuzzResolvePath(f *testing.F) {
	fd := newFuzzDirs(f)
	g := fd.with(nil, nil, nil)
	for _, s := range []string{"", "/", "sub/x", "/sub//x/", "e1", "link/x", "../e1", "./e1", "sub/./x", "e1/..", "\x00", "é/ü", strings.Repeat("a/", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := splitPath(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("splitPath(%q): %v", p, err)
			}
		} else {
			for _, s := range segs {
				if validName(s) != nil {
					t.Fatalf("splitPath(%q) accepted segment %q", p, s)
				}
			}
			again, err := splitPath(strings.Join(segs, "/"))
			if err != nil || strings.Join(again, "/") != strings.Join(segs, "/") {
				t.Fatalf("splitPath(%q) = %q does not round-trip: %q, %v", p, segs, again, err)
			}
		}
		c, rerr := Resolve(context.Background(), g, fd.root, p)
		switch {
		case err != nil:
			if !errors.Is(rerr, ErrInvalidPath) {
				t.Fatalf("Resolve(%q) = %v, want ErrInvalidPath", p, rerr)
			}
		case rerr == nil:
			if len(segs) == 0 && c != fd.root {
				t.Fatalf("Resolve(%q) = %s, want the root", p, c)
			}
		case !errors.Is(rerr, ErrNoSuchPath) && !errors.Is(rerr, ErrNotDirectory):
			t.Fatalf("Resolve(%q): unexpected error %v", p, rerr)
		}
	})
}
