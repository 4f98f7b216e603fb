package protocol

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// A reader waiting for a late block of a running fetch gets it ahead of the
// blocks before it (the streaming-reader path).
func TestClientGetPrioritizesRunningFetch(t *testing.T) {
	d := makeClDAG(t, 16, 1<<20, 6)
	_, leech := clSwarm(t, d, 1, 4<<20) // ~4 s for the whole DAG
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := leech.cl.Fetch(ctx, d.root)
	if err != nil {
		t.Fatal(err)
	}
	last := d.leaves[len(d.leaves)-1]
	got, err := leech.cl.Get(ctx, last)
	if err != nil || !bytes.Equal(got, d.blocks[last]) {
		t.Fatalf("Get(last leaf) = %d bytes, %v", len(got), err)
	}
	select {
	case <-f.Done():
		t.Error("the fetch finished before the prioritised last block was delivered")
	default:
	}
	f.Cancel()
	if _, err := f.Wait(); !errors.Is(err, ErrFetchClosed) {
		t.Fatalf("Wait after Cancel: %v, want ErrFetchClosed", err)
	}
}

func TestClientFetchCancelAndClose(t *testing.T) {
	d := makeClDAG(t, 16, 1<<20, 7)
	_, leech := clSwarm(t, d, 1, 2<<20)
	ctx, cancel := context.WithCancel(context.Background())
	f, err := leech.cl.Fetch(ctx, d.root)
	if err != nil {
		t.Fatal(err)
	}
	for u := range f.Updates() {
		if u.BlocksDone >= 2 {
			break
		}
	}
	cancel()
	if _, err := f.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v, want context.Canceled", err)
	}
	// The client still works, and Close ends a running fetch.
	f2, err := leech.cl.Fetch(context.Background(), d.root)
	if err != nil {
		t.Fatal(err)
	}
	leech.cl.Close()
	if _, err := f2.Wait(); !errors.Is(err, ErrFetchClosed) && err != nil {
		t.Fatalf("Wait after Close: %v, want ErrFetchClosed (or done)", err)
	}
	if _, err := leech.cl.Fetch(context.Background(), d.root); !errors.Is(err, ErrFetchClosed) {
		t.Fatalf("Fetch after Close: %v, want ErrFetchClosed", err)
	}
	leech.cl.Close() // idempotent
}

func TestClientInlineCIDNeedsNoPeer(t *testing.T) {
	leech := newClNode(t, newClientStore(), 0, nil)
	data := []byte("tiny inline block")
	h, err := mh.Sum(data, mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	k := cid.NewCidV1(cid.Raw, h)
	got, err := leech.cl.Get(context.Background(), k)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get(identity CID) = %q, %v", got, err)
	}
	res, err := clFetchAll(t, leech, k, nil)
	if err != nil || res.Bytes != 0 || res.BlocksLocal != 1 {
		t.Fatalf("Fetch(identity CID) = %+v, %v; want done locally", res, err)
	}
}
