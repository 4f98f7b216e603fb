package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

type tarEntry struct {
	name, link string
	typ        byte
	body       string
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil && e.typ == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractTarAtomic(t *testing.T) {
	good := []tarEntry{
		{name: "top/", typ: tar.TypeDir},
		{name: "top/a.txt", typ: tar.TypeReg, body: "A"},
		{name: "top/sub/", typ: tar.TypeDir},
		{name: "top/sub/b.txt", typ: tar.TypeReg, body: "BB"},
		{name: "top/sub/up", typ: tar.TypeSymlink, link: "../a.txt"},
		{name: "top/sub/self", typ: tar.TypeSymlink, link: "."},
	}
	bad := map[string][]tarEntry{
		"dot-dot name":         {{name: "top/../evil", typ: tar.TypeReg, body: "x"}},
		"absolute name":        {{name: "/etc/evil", typ: tar.TypeReg, body: "x"}},
		"outside top":          {{name: "other/evil", typ: tar.TypeReg, body: "x"}},
		"escaping symlink":     {{name: "top/l", typ: tar.TypeSymlink, link: "../../etc/passwd"}},
		"absolute symlink":     {{name: "top/l", typ: tar.TypeSymlink, link: "/etc/passwd"}},
		"deep escaping link":   {{name: "top/sub/", typ: tar.TypeDir}, {name: "top/sub/l", typ: tar.TypeSymlink, link: "../.."}},
		"hard link":            {{name: "top/h", typ: tar.TypeLink, link: "top/a"}},
		"device":               {{name: "top/d", typ: tar.TypeChar}},
		"file as top":          {{name: "top", typ: tar.TypeReg, body: "x"}},
		"duplicate file":       {{name: "top/a", typ: tar.TypeReg, body: "1"}, {name: "top/a", typ: tar.TypeReg, body: "2"}},
		"dot-dot in middle":    {{name: "top/a/../../evil", typ: tar.TypeReg, body: "x"}},
		"backslash separators": {{name: `top/..\evil`, typ: tar.TypeReg, body: "x"}},
	}

	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	n, err := extractTarAtomic(bytes.NewReader(makeTar(t, good)), "top", target, false, io.Discard)
	if err != nil || n != 3 {
		t.Fatalf("good tar: %d bytes, %v", n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "sub", "up")); string(b) != "A" {
		t.Errorf("symlink sub/up reads %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "sub", "b.txt")); string(b) != "BB" {
		t.Errorf("sub/b.txt = %q", b)
	}

	for name, entries := range bad {
		sandbox := t.TempDir()
		target := filepath.Join(sandbox, "inner", "out")
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := extractTarAtomic(bytes.NewReader(makeTar(t, entries)), "top", target, false, io.Discard)
		if err == nil {
			t.Errorf("%s: extracted without error", name)
		}
		if name != "duplicate file" && !errors.Is(err, errUnsafeEntry) {
			t.Errorf("%s: error %v is not errUnsafeEntry", name, err)
		}
		// Nothing under the final name, nothing left beside it, nothing
		// outside.
		left, _ := os.ReadDir(filepath.Dir(target))
		above, _ := os.ReadDir(sandbox)
		if len(left) != 0 || len(above) != 1 {
			t.Errorf("%s: left %v in the target's directory, %v above it", name, left, above)
		}
	}
}

func TestWriteFileAtomicFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "f")
	r := io.MultiReader(bytes.NewReader([]byte("partial")), errReader{})
	if _, err := writeFileAtomic(r, target, false, io.Discard); err == nil {
		t.Fatal("no error from a failing stream")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left %v behind", left)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// FuzzEntryPath: every accepted tar name maps to a local path below the
// target.
func FuzzEntryPath(f *testing.F) {
	for _, s := range []string{"top", "top/", "top/a", "top/../a", "/abs", "top/a/./b", "top//a", `top/a\..\..`, "topx/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		rel, err := entryPath(name, "top")
		if err != nil {
			return
		}
		if !filepath.IsLocal(rel) {
			t.Fatalf("entryPath(%q) = %q, not local", name, rel)
		}
		if joined := filepath.Join("/target", rel); joined != "/target" && !bytes.HasPrefix([]byte(joined), []byte("/target/")) {
			t.Fatalf("entryPath(%q) = %q lands at %s", name, rel, joined)
		}
	})
}
