package sim

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/node"
)

// fetchAll fetches root on n within limit and reads it back.
func fetchAll(n *node.Node, root cid.Cid, limit time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	tr, err := n.Fetch(ctx, root, "test")
	if err != nil {
		return nil, err
	}
	select {
	case <-tr.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := tr.Err(); err != nil {
		return nil, err
	}
	f, err := n.Open(ctx, root)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// connectWithin connects n to addr, dialling again after a failure until
// limit has passed; it returns the last failure.
func connectWithin(ctx context.Context, n *node.Node, addr string, limit time.Duration) error {
	end := time.Now().Add(limit)
	for {
		err := n.Connect(ctx, addr)
		if err == nil || time.Now().After(end) {
			return err
		}
		time.Sleep(time.Second)
	}
}

// TestCluster: content shared on one node of a cluster is fetched by
// another; across a partition it is not (the connection is refused and no
// block arrives), after Heal it is; with every holder killed it is not,
// and once a holder is restarted (same peer ID, same store) it is again.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes and waits out refused fetches; skipped with -short")
	}
	c := NewCluster(t, 4, ClusterOptions{Seed: 9, Logger: testLogger(t)})
	data := makeContent(9, 3<<20+17)
	ctx := t.Context()
	add, err := c.Node(0).AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	root := add.CID

	got, err := fetchAll(c.Node(1), root, time.Minute)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("node 1 fetching across the cluster: %d bytes, err %v; want the %d bytes shared", len(got), err, len(data))
	}

	c.Partition([]int{0, 1}, []int{2, 3})
	if err := c.Node(2).Connect(ctx, c.Addr(0)); err == nil {
		t.Errorf("node 2 connected to node 0 across the partition")
	}
	if _, err := fetchAll(c.Node(2), root, 10*time.Second); err == nil {
		t.Errorf("node 2 fetched the content across the partition")
	}
	if has, err := c.Store(2).Has(ctx, root); has || err != nil {
		t.Errorf("node 2's store after the partitioned fetch: has root %v, err %v", has, err)
	}

	c.Heal()
	// A dial begun during the partition may still be running (and the
	// swarm joins it): its handshake times out, and the next dial passes.
	err = connectWithin(ctx, c.Node(2), c.Addr(0), time.Minute)
	if err != nil {
		t.Errorf("node 2 connecting to node 0 after Heal: %v", err)
	}
	got, err = fetchAll(c.Node(2), root, time.Minute)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("node 2 fetching after Heal: %d bytes, err %v", len(got), err)
	}

	id0 := c.Node(0).Host().ID()
	for _, i := range []int{0, 1, 2} {
		c.Kill(i)
	}
	if c.Node(0) != nil || c.Addr(0) != "" {
		t.Errorf("node 0 still reported after Kill")
	}
	if _, err := fetchAll(c.Node(3), root, 10*time.Second); err == nil {
		t.Errorf("node 3 fetched the content with every holder killed")
	}

	c.Restart(0)
	if id := c.Node(0).Host().ID(); id != id0 {
		t.Errorf("restarted node 0 is %s, was %s", id, id0)
	}
	if err := connectWithin(ctx, c.Node(3), c.Addr(0), time.Minute); err != nil {
		t.Fatalf("node 3 connecting to the restarted node 0: %v", err)
	}
	got, err = fetchAll(c.Node(3), root, time.Minute)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("node 3 fetching from the restarted node 0: %d bytes, err %v", len(got), err)
	}
}
