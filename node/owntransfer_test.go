package node

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// TestOpenUnderFailedTransferFetchesNothing: a read that belongs to a
// transfer (WithTransfer, the CLI streaming its own fetch) after that
// transfer failed on a full disk is refused at once with the transfer's
// error, and starts no second fetch; a read under a transfer that is
// done reads the content and starts none either; an unknown transfer is
// ErrNotFound. Without WithTransfer the same read starts its own fetch
// (the gateway's behaviour), which is what the CLI raced into before.
func TestOpenUnderFailedTransferFetchesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := startNode(t, testConfig())
	data := randomBytes(5<<20, 12)
	res, err := seed.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leech, _ := startFullDiskNode(t, 2)
	tr := fetchFrom(t, ctx, leech, seed, res.CID)
	if !errors.Is(tr.Err(), syscall.ENOSPC) {
		t.Fatalf("transfer error = %v, want ENOSPC", tr.Err())
	}
	id := tr.Info().ID

	f, err := leech.Open(WithTransfer(ctx, id), res.CID)
	if err == nil {
		f.Close()
		t.Fatal("Open under a failed transfer succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Open under a failed transfer: %v, want the transfer's ENOSPC", err)
	}
	if n := len(leech.Transfers()); n != 1 {
		t.Errorf("%d transfers after a read under the failed one, want 1: %+v", n, leech.Transfers())
	}
	if _, err := leech.Open(WithTransfer(ctx, "t999"), res.CID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open under an unknown transfer: %v, want ErrNotFound", err)
	}

	// The gateway's read (no transfer) fetches again: the read ahead of
	// its first Read starts a transfer of its own.
	g, err := leech.Open(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = g.Read(make([]byte, 1))
	g.Close()
	if n := len(leech.Transfers()); n != 2 {
		t.Errorf("%d transfers after a gateway read, want 2 (its own fetch)", n)
	}

	// A read under a transfer that is done gets the content and starts
	// no fetch.
	other := startNode(t, testConfig())
	done := fetchFrom(t, ctx, other, seed, res.CID)
	if err := done.Err(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, WithTransfer(ctx, done.Info().ID), other, res.CID); !bytes.Equal(got, data) {
		t.Fatalf("read under a done transfer: %d bytes, want the %d bytes shared", len(got), len(data))
	}
	if n := len(other.Transfers()); n != 1 {
		t.Errorf("%d transfers after a read under a done one, want 1", n)
	}
}

// fetchFrom connects n to seed, fetches c and waits for the transfer to end.
func fetchFrom(t *testing.T, ctx context.Context, n, seed *Node, c cid.Cid) *Transfer {
	t.Helper()
	if err := n.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	tr, err := n.Fetch(ctx, c, "api")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatalf("fetch of %s still running: %+v", c, tr.Info())
	}
	return tr
}
