package node_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// TestOverlappingFetches: a fetch of a directory and a streaming read of a
// file inside it run at once (what `shoal fetch DIR` does through the API:
// the tar stream opens each file while the directory's transfer runs).
// Both must finish with the right bytes.
func TestOverlappingFetches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := sim.NewCluster(t, 2, sim.ClusterOptions{}) // connected
	a, b := c.Node(0), c.Node(1)
	big := node.RandomBytes(6<<20+123, 5)
	small := node.RandomBytes(2000, 6)
	var tar bytes.Buffer
	node.WriteTar(t, &tar, map[string][]byte{"a.txt": small, "sub/big.bin": big})
	res, err := a.AddTar(ctx, &tar)
	if err != nil {
		t.Fatal(err)
	}
	bigCID, err := a.Resolve(ctx, res.CID, "sub/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := b.Fetch(ctx, res.CID, "api")
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(ctx, t, b, res.CID, bigCID)
	if !bytes.Equal(got, big) {
		t.Fatalf("streamed %d bytes that differ from the %d shared", len(got), len(big))
	}
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatalf("directory transfer did not finish: %+v", tr.Info())
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
}

func readAll(ctx context.Context, t *testing.T, n *node.Node, dir, file cid.Cid) []byte {
	t.Helper()
	if _, err := n.Resolve(ctx, dir, "sub/big.bin"); err != nil {
		t.Fatal(err)
	}
	f, err := n.Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading the file while the directory is fetched: %v", err)
	}
	return got
}
