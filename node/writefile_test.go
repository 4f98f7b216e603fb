package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoalnet/shoal/content"
)

// countingFile is an *os.File that counts the writes at each offset.
type countingFile struct {
	*os.File
	mu     sync.Mutex
	writes map[int64]int
}

func (f *countingFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	f.writes[off]++
	f.mu.Unlock()
	return f.File.WriteAt(p, off)
}

// TestWriteFileFromPeer: b fetches a file from a into a file of its own
// through WriteFile. One leaf is in b's store before the fetch (it is
// copied from the store, not fetched again), one leaf's bytes repeat at
// two offsets; every piece is written exactly once and the file holds the
// shared bytes.
func TestWriteFileFromPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig())
	b := startNode(t, testConfig())
	chunk := randomBytes(1<<20, 5)
	data := append(append(append([]byte{}, chunk...), randomBytes(3<<20, 6)...), chunk...)
	data = append(data, randomBytes(12345, 7)...)
	res, err := a.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	ls := leaves(t, a, res.CID)
	if _, err := b.Block(ctx, ls[2]); err != nil { // held before the fetch
		t.Fatal(err)
	}
	tr, err := b.FetchWith(ctx, res.CID, FetchOptions{Source: "test", Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cf := &countingFile{File: f, writes: map[int64]int{}}
	// progress is called from the goroutines that store blocks and from
	// WriteFile's own (copying blocks already held), at once.
	var mu sync.Mutex
	var last uint64
	n, err := b.WriteFile(ctx, tr, cf, func(w uint64) { mu.Lock(); last = max(last, w); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(data)) || last != n {
		t.Fatalf("WriteFile wrote %d bytes (progress said %d), want %d", n, last, len(data))
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the written file (%d bytes, %v) differs from the %d shared", len(got), err, len(data))
	}
	if len(cf.writes) != 6 {
		t.Fatalf("writes at %d offsets, want the 6 pieces: %v", len(cf.writes), cf.writes)
	}
	for off, k := range cf.writes {
		if k != 1 {
			t.Fatalf("offset %d written %d times, want once", off, k)
		}
	}
	if info := tr.Info(); info.BytesReceived >= uint64(len(data)) {
		t.Fatalf("the fetch received %d bytes: the leaf already held (and the repeated one) crossed the network again", info.BytesReceived)
	}
}

// TestWriteFileErrors: a directory is not a file; a failed write is the
// error, naming the block.
func TestWriteFileErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig())
	var tarBuf bytes.Buffer
	writeTar(t, &tarBuf, map[string][]byte{"x.txt": []byte("hello")})
	dir, err := a.AddTar(ctx, &tarBuf)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := a.FetchWith(ctx, dir.CID, FetchOptions{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := a.WriteFile(ctx, tr, f, nil); !errors.Is(err, content.ErrNotFile) {
		t.Fatalf("WriteFile of a directory: %v, want ErrNotFile", err)
	}

	res, err := a.AddFile(ctx, bytes.NewReader(randomBytes(2<<20, 9)))
	if err != nil {
		t.Fatal(err)
	}
	tr, err = a.FetchWith(ctx, res.CID, FetchOptions{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(f.Name()) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := a.WriteFile(ctx, tr, ro, nil); err == nil {
		t.Fatal("WriteFile into a read-only file succeeded")
	}
}
