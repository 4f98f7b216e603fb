//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFetchedFileIsTheSeed: a file shared with --no-copy and a file
// fetched with -o are the only copies of their bytes: neither daemon's
// home grows by the file, a third daemon fetches the file from the
// leecher alone, an edit of the leecher's file shows in `repo verify` as
// a reference gone (not damage) and `shoal pin` fetches that block again.
func TestFetchedFileIsTheSeed(t *testing.T) {
	shoalBinary(t)
	dir := t.TempDir()
	const size = 12<<20 + 999
	data := randomBytes(size, 77)
	src := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	seeder := startDaemon(t, filepath.Join(dir, "seeder"))
	before := diskUsage(t, seeder.home)
	root := lastLine(seeder.cli("share", "--no-copy", src))
	if want := lastLine(seeder.cli("cid", src)); root != want {
		t.Fatalf("share --no-copy gave %s, shoal cid %s", root, want)
	}
	if grew := diskUsage(t, seeder.home) - before; grew > 1<<20 {
		t.Fatalf("sharing %d bytes without a copy grew the home by %d bytes", size, grew)
	}

	leech := startDaemon(t, filepath.Join(dir, "leech"), seeder.addr)
	before = diskUsage(t, leech.home)
	out := filepath.Join(dir, "got.bin")
	leech.cli("fetch", root, "-o", out)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s holds %d bytes (%v), want the %d shared", out, len(got), err, size)
	}
	if grew := diskUsage(t, leech.home) - before; grew > 1<<20 {
		t.Fatalf("fetching %d bytes with -o grew the leecher's home by %d bytes", size, grew)
	}
	if parts, _ := filepath.Glob(filepath.Join(dir, ".got.bin.*")); len(parts) != 0 {
		t.Fatalf("part files left beside the target: %v", parts)
	}

	seeder.stop()
	third := startDaemon(t, filepath.Join(dir, "third"), leech.addr)
	out3 := filepath.Join(dir, "third.bin")
	third.cli("fetch", root, "-o", out3)
	if got, err := os.ReadFile(out3); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the third daemon fetched %d bytes (%v) from the leecher's file, want the %d shared", len(got), err, size)
	}

	f, err := os.OpenFile(out, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("edited"), 5<<20+123)
	f.Close()
	rep, code, stderr := repoVerify(t, leech.home)
	if code != 0 || rep.Damaged() || len(rep.RefsGone) != 1 || len(rep.Incomplete) != 1 || rep.Incomplete[0].Missing != 1 {
		t.Fatalf("repo verify after editing the fetched file: %+v (exit %d, %s); want one reference gone, its pin missing one block, no damage", rep, code, stderr)
	}
	leech.cli("pin", root)
	checkRepo(t, leech, "after pin fetched the edited block again")
}
