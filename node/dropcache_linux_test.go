package node

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestWriteFileDropsWrittenPages: a file WriteFile wrote (three
// checkpoints' worth) holds the fetched bytes and has left the page cache
// once WriteFile returns; with transfer.cache_fetched_files it stays cached.
func TestWriteFileDropsWrittenPages(t *testing.T) {
	if !dropsPages(t) {
		t.Skip("this file system keeps a synced file's pages after POSIX_FADV_DONTNEED (tmpfs?)")
	}
	data := randomBytes(3*checkpointBytes+12345, 77)
	for _, keep := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := startNode(t, testConfig())
		cfg := testConfig()
		cfg.Transfer.CacheFetchedFiles = keep
		b := startNode(t, cfg)
		res, err := a.AddFile(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
			t.Fatal(err)
		}
		tr, err := b.FetchWith(ctx, res.CID, FetchOptions{Source: "test", Pin: true})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp(t.TempDir(), ".out.*.part")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteFile(ctx, tr, f, nil); err != nil {
			t.Fatal(err)
		}
		cached, pages := residentPages(t, f)
		f.Close()
		if got, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("cache_fetched_files=%v: the file holds %d bytes (%v), want the %d shared", keep, len(got), err, len(data))
		}
		if !keep && cached > pages/8 {
			t.Errorf("cache_fetched_files=false: %d of the file's %d pages still cached after WriteFile; want them dropped", cached, pages)
		}
		if keep && cached < pages/2 {
			t.Errorf("cache_fetched_files=true: %d of the file's %d pages cached after WriteFile; want them kept", cached, pages)
		}
	}
}

// dropsPages reports whether the file system under t.TempDir() drops a
// synced file's pages on POSIX_FADV_DONTNEED.
func dropsPages(t *testing.T) bool {
	f, err := os.CreateTemp(t.TempDir(), "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	dropCached(f, 0, 1<<20)
	cached, pages := residentPages(t, f)
	return cached < pages/2
}

// residentPages counts the pages of f in the page cache (mincore of a
// mapping of it) and all its pages.
func residentPages(t *testing.T, f *os.File) (cached, pages int) {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	ps := os.Getpagesize()
	vec := make([]byte, (len(m)+ps-1)/ps)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	for _, v := range vec {
		if v&1 != 0 {
			cached++
		}
	}
	return cached, len(vec)
}
