package content

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzDirBuilderPaths feeds entry paths as a tar stream would (one per
// line, "/"-suffixed for directories, "@" for a symlink): every path is
// either rejected with ErrInvalidPath/ErrPathConflict or resolvable in
// the finished tree to what was added there.
func FuzzDirBuilderPaths(f *testing.F) {
	for _, s := range []string{
		"a\nb/c\nb/d/",
		"./x\n./y/z\n/abs/p",
		"a\na/b\n../up\nq/./r\ns//t",
		"@l\nl/x\nd/\nd",
		"é\n\x00\n.\n..\n./\n/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ctx := context.Background()
		store := newDTStore()
		b := NewDirBuilder(store, ImportOptions{Workers: 1})
		want := map[string]string{} // cleaned path -> file content or symlink target
		for _, line := range strings.Split(in, "\n") {
			var err error
			switch {
			case strings.HasSuffix(line, "/"):
				err = b.AddDir(line)
			case strings.HasPrefix(line, "@"):
				err = b.AddSymlink(ctx, line[1:], "target")
			default:
				_, err = b.AddFile(ctx, line, strings.NewReader(line))
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidPath) && !errors.Is(err, ErrPathConflict) {
					t.Fatalf("adding %q: unexpected error %v", line, err)
				}
				continue
			}
			if !strings.HasSuffix(line, "/") {
				p, _ := cleanEntryPath(strings.TrimPrefix(line, "@"))
				want[strings.Join(p, "/")] = line
			}
		}
		res, err := b.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for p, line := range want {
			c, err := Resolve(ctx, store, res.CID, p)
			if err != nil {
				t.Fatalf("added %q but Resolve(%q): %v", line, p, err)
			}
			var wantCID = dagPBCID(symlinkBlock("target"))
			if !strings.HasPrefix(line, "@") {
				fr, err := ImportFile(ctx, strings.NewReader(line), nil, ImportOptions{Workers: 1})
				if err != nil {
					t.Fatal(err)
				}
				wantCID = fr.CID
			}
			if c != wantCID {
				t.Fatalf("Resolve(%q) = %s, want %s", p, c, wantCID)
			}
		}
	})
}
