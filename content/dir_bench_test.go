package content

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkImportPathSmallFiles imports a tree of 2000 files of 4 KiB in
// 20 directories, hash only (bytes/s counts file content).
func BenchmarkImportPathSmallFiles(b *testing.B) {
	dir := b.TempDir()
	var entries []dtEntry
	for i := range 2000 {
		entries = append(entries, dtEntry{path: fmt.Sprintf("d%02d/f%04d", i%20, i), kind: TFile, size: 4096, seed: uint64(i)})
	}
	dtWriteTree(b, dir, entries)
	b.SetBytes(2000 * 4096)
	for b.Loop() {
		if _, err := ImportPath(context.Background(), dir, nil, ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportPathLargeFile imports one 64 MiB file through ImportPath
// in a directory, hash only, for comparison with ImportFile's own speed.
func BenchmarkImportPathLargeFile(b *testing.B) {
	dir := b.TempDir()
	data := dtEntry{size: 64 << 20, seed: 1}.content()
	if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ImportPath(context.Background(), dir, nil, ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportFileSameData is the reference for the two above: the
// same 64 MiB through ImportFile from memory.
func BenchmarkImportFileSameData(b *testing.B) {
	data := dtEntry{size: 64 << 20, seed: 1}.content()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ImportFile(context.Background(), bytes.NewReader(data), nil, ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
