package content

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type tarEntry struct {
	h    tar.Header
	data string
}

func tarBytes(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		h.Size = int64(len(e.data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportTarMatchesImportPath: a tree sent as tar gets the CID the same
// tree gets from disk (ImportPath, which is held to boxo).
func TestImportTarMatchesImportPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"a.txt": "alpha", "sub/b.bin": strings.Repeat("b", 3<<20)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../a.txt", filepath.Join(dir, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	want, err := ImportPath(ctx, dir, newDTStore(), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tb := tarBytes(t, []tarEntry{
		{h: tar.Header{Typeflag: tar.TypeReg, Name: "./a.txt"}, data: "alpha"},
		{h: tar.Header{Typeflag: tar.TypeDir, Name: "sub/", Mode: 0o755}},
		{h: tar.Header{Typeflag: tar.TypeReg, Name: "sub/b.bin"}, data: strings.Repeat("b", 3<<20)},
		{h: tar.Header{Typeflag: tar.TypeDir, Name: "sub/empty/", Mode: 0o755}},
		{h: tar.Header{Typeflag: tar.TypeSymlink, Name: "sub/link", Linkname: "../a.txt"}},
	})
	s := newDTStore()
	got, err := ImportTar(ctx, s, bytes.NewReader(tb), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.CID.Equals(want.CID) || got.Size != want.Size {
		t.Fatalf("ImportTar = %s (%d bytes); ImportPath of the same tree = %s (%d bytes)", got.CID, got.Size, want.CID, want.Size)
	}
	if k, err := KindOf(ctx, s, got.CID); err != nil || k != TDirectory {
		t.Errorf("KindOf(imported root) = %v, %v; want directory", k, err)
	}
}

func TestImportTarErrors(t *testing.T) {
	ctx := context.Background()
	good := tarBytes(t, []tarEntry{{h: tar.Header{Typeflag: tar.TypeReg, Name: "a"}, data: "0123456789"}})
	for _, tc := range []struct {
		name string
		tar  []byte
		want string
	}{
		{"hard link", tarBytes(t, []tarEntry{{h: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "a"}}}),
			`tar entry "h": entry "h" is a hard link; shoal stores regular files, directories and symlinks only`},
		{"device", tarBytes(t, []tarEntry{{h: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null"}}}),
			`tar entry "dev/null": entry "dev/null" is a device;`},
		{"named pipe", tarBytes(t, []tarEntry{{h: tar.Header{Typeflag: tar.TypeFifo, Name: "p"}}}),
			`tar entry "p": entry "p" is a named pipe;`},
		{"same name twice", tarBytes(t, []tarEntry{
			{h: tar.Header{Typeflag: tar.TypeReg, Name: "a"}, data: "1"},
			{h: tar.Header{Typeflag: tar.TypeReg, Name: "a"}, data: "2"}}),
			`tar entry "a": `},
		{"truncated stream", good[:300], "reading the tar stream: "},
	} {
		res, err := ImportTar(ctx, newDTStore(), bytes.NewReader(tc.tar), ImportOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || res.CID.Defined() {
			t.Errorf("%s: ImportTar = %v, %v; want an error starting %q and no root", tc.name, res.CID, err, tc.want)
		}
	}
}
