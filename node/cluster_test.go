package node_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// Tests of several whole nodes, on sim's cluster (in-process nodes on the
// simulated network). They are in package node_test because sim imports
// node; what they read of a node is its public API.

// TestShareFetchThroughDHT: B shares; C, which knows only A, finds B as a
// provider through the DHT and fetches the exact bytes; C then serves D.
func TestShareFetchThroughDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cl := sim.NewCluster(t, 3, sim.ClusterOptions{}) // B and C bootstrap from A
	b, c := cl.Node(1), cl.Node(2)

	data := node.RandomBytes(3<<20+777, 1)
	res, err := b.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Wait until B's announcement reached the DHT.
	for {
		if roots, err := b.Roots(ctx); err == nil && len(roots) == 1 && !roots[0].LastProvided.IsZero() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("B never announced its root")
		case <-time.After(100 * time.Millisecond):
		}
	}
	tr, err := c.Fetch(ctx, res.CID, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Err(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	info := tr.Info()
	if info.State != node.TransferDone || info.Size != uint64(len(data)) {
		t.Fatalf("transfer = %+v", info)
	}
	if len(info.Peers) == 0 || info.Peers[0].Peer != b.Info().ID {
		t.Fatalf("transfer peers = %+v, want B %s", info.Peers, b.Info().ID)
	}
	f, err := c.Open(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("C read %d bytes that differ from the %d shared", len(got), len(data))
	}
	roots, err := c.Roots(ctx)
	if err != nil || len(roots) != 1 || roots[0].CID != res.CID.String() || roots[0].Pinned {
		t.Fatalf("C roots = %+v, %v; want the fetched root, unpinned", roots, err)
	}
}

// TestOpenStreamsFromPeer: a node that holds nothing streams a file from
// a connected peer through Open, with a range read in the middle.
func TestOpenStreamsFromPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := sim.NewCluster(t, 2, sim.ClusterOptions{}) // connected
	a, b := cl.Node(0), cl.Node(1)
	data := node.RandomBytes(5<<20+3, 2)
	res, err := a.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	f, err := b.Open(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != uint64(len(data)) {
		t.Fatalf("size %d, want %d", f.Size(), len(data))
	}
	off := int64(2<<20 + 1000)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100000)
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
		t.Fatal("range read differs from the source")
	}
}
