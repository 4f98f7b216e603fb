package node

import (
	"archive/tar"
	"io"
	"testing"
)

// Exported for the tests in package node_test (those of several nodes,
// which use sim's cluster; sim imports node).

// RandomBytes is n bytes of a stream that seed picks.
var RandomBytes = randomBytes

// WriteTar writes files as a tar stream to w.
var WriteTar = writeTar

func writeTar(t *testing.T, w io.Writer, files map[string][]byte) {
	t.Helper()
	tw := tar.NewWriter(w)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}
