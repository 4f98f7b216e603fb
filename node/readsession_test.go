package node

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func testCid(t *testing.T, s string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func collect(ch <-chan peer.AddrInfo) []peer.ID {
	var out []peer.ID
	for ai := range ch {
		out = append(out, ai.ID)
	}
	return out
}

// fakeDHT answers every lookup with the providers in found, counting the
// lookups.
type fakeDHT struct {
	lookups atomic.Int32
	found   atomic.Pointer[[]peer.ID]
}

func (d *fakeDHT) lookup(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	d.lookups.Add(1)
	ids := *d.found.Load()
	out := make(chan peer.AddrInfo, len(ids))
	for _, id := range ids {
		out <- peer.AddrInfo{ID: id}
	}
	close(out)
	return out
}

// TestReadSessionLooksUpOnce: the provider searches of a session's root
// and of every block read for it get the one lookup's providers; a CID
// of no session asks the DHT; a lookup that found nobody is repeated
// only readRelookup later; the session closes readSessionLinger after
// its last reader, and a read after that looks up again.
func TestReadSessionLooksUpOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		dht := &fakeDHT{}
		dht.found.Store(&[]peer.ID{"seeder"})
		rs := newReadSessions(ctx, dht.lookup, nil)
		defer func() { cancel(); rs.close() }()
		root, leaf, other := testCid(t, "root"), testCid(t, "leaf"), testCid(t, "other")

		s, done := rs.acquire(root)
		unmark := rs.mark(s, leaf, false)
		for _, c := range []cid.Cid{root, leaf, leaf, root} {
			if got := collect(rs.FindProviders(ctx, c)); len(got) != 1 || got[0] != "seeder" {
				t.Fatalf("providers of %s = %v, want [seeder]", c, got)
			}
		}
		if n := dht.lookups.Load(); n != 1 {
			t.Fatalf("%d DHT lookups for four searches of one session, want 1", n)
		}
		collect(rs.FindProviders(ctx, other))
		if n := dht.lookups.Load(); n != 2 {
			t.Fatalf("%d DHT lookups after a search outside the session, want 2", n)
		}
		unmark()
		done()

		// A session whose lookup found nobody looks again, but not at once.
		dht.found.Store(&[]peer.ID{})
		empty, done2 := rs.acquire(other)
		collect(empty.providers(ctx))
		collect(empty.providers(ctx))
		if n := dht.lookups.Load(); n != 3 {
			t.Fatalf("%d DHT lookups, want 3: an empty answer is not asked again at once", n)
		}
		time.Sleep(readRelookup)
		dht.found.Store(&[]peer.ID{"late"})
		if got := collect(empty.providers(ctx)); len(got) != 1 || got[0] != "late" {
			t.Fatalf("providers after readRelookup = %v, want [late]", got)
		}
		done2()

		if open := rs.stats().OpenSessions; open != 2 {
			t.Fatalf("%d sessions open right after their readers left, want 2 (they linger)", open)
		}
		time.Sleep(readSessionLinger + time.Second)
		synctest.Wait()
		if st := rs.stats(); st.OpenSessions != 0 || st.Sessions != 2 {
			t.Fatalf("stats %+v after the linger, want no session open of 2 opened", st)
		}
		before := dht.lookups.Load()
		collect(rs.FindProviders(ctx, root))
		if n := dht.lookups.Load(); n != before+1 {
			t.Fatalf("a search after the session closed made %d lookups, want 1", n-before)
		}
	})
}

// TestReadSessionHandsOver: a block delivered while a reader waits for
// it is taken as a copy of the bytes stored (the caller's buffer may be
// reused at once), by every reader waiting for it; once they are done,
// nothing is kept and take finds nothing.
func TestReadSessionHandsOver(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	rs := newReadSessions(ctx, (&fakeDHT{}).lookup, nil)
	defer func() { cancel(); rs.close() }()
	c, unwanted := testCid(t, "block"), testCid(t, "unwanted")
	s, done := rs.acquire(testCid(t, "root"))
	defer done()

	rs.deliver(c, []byte("early")) // nobody waits yet: dropped
	if _, ok := rs.take(c); ok {
		t.Fatal("a block nobody waited for was kept")
	}
	first, second := rs.mark(s, c, true), rs.mark(s, c, true)
	buf := []byte("the block's bytes")
	rs.deliver(c, buf)
	rs.deliver(unwanted, []byte("x"))
	copy(buf, "overwritten by the client")
	for range 2 {
		got, ok := rs.take(c)
		if !ok || !bytes.Equal(got, []byte("the block's bytes")) {
			t.Fatalf("take = %q, %v; want the bytes as delivered", got, ok)
		}
	}
	if _, ok := rs.take(unwanted); ok {
		t.Fatal("took a block nobody waits for")
	}
	first()
	if _, ok := rs.take(c); !ok {
		t.Fatal("the second reader lost the block when the first was done")
	}
	second()
	if _, ok := rs.take(c); ok {
		t.Fatal("the bytes outlived their readers")
	}
	if got := rs.stats().BlocksHanded; got != 3 {
		t.Fatalf("BlocksHanded = %d, want 3", got)
	}
}
