package swarm

import (
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestViews: maps merge per parent (bits OR'ed, a later map split in
// parts adds to the first), HAVEs are kept once each, interest and choke
// follow the last message, View returns copies sorted by peer, and a peer
// cannot grow the record past its bounds.
func TestViews(t *testing.T) {
	root, a, b, c := testCID(t, "root"), testCID(t, "a"), testCID(t, "b"), testCID(t, "c")
	p1, p2 := peer.ID("peer-1"), peer.ID("peer-2")
	s := &Service{peers: map[peer.ID]*peerConn{p1: nil, p2: nil}}
	s.view.gotMap(p2, &Message{Kind: KindMap, Root: root, Complete: true})
	s.view.gotMap(p1, &Message{Kind: KindMap, Root: root, Interested: true, Segments: []Segment{{Parent: root, Bits: []byte{0b0001}}}})
	s.view.gotMap(p1, &Message{Kind: KindMap, Root: root, Interested: true, Segments: []Segment{{Parent: root, Bits: []byte{0b0100, 0b1}}, {Parent: a, Bits: []byte{1}}}})
	s.view.gotHaves(p1, root, []cid.Cid{b, c, b})
	s.view.gotChoke(p1, true)
	v := s.View(root)
	got := fmt.Sprintf("%v", v)
	want := fmt.Sprintf("%v", []PeerView{
		{Peer: p1, Interested: true, Segments: []Segment{{Parent: root, Bits: []byte{0b0101, 0b1}}, {Parent: a, Bits: []byte{1}}}, Haves: []cid.Cid{b, c}},
		{Peer: p2, Complete: true, Segments: []Segment{}},
	})
	if got != want {
		t.Fatalf("View:\n%s\nwant\n%s", got, want)
	}
	v[0].Segments[0].Bits[0] = 0xff // a copy: the record is unchanged
	if s.View(root)[0].Segments[0].Bits[0] != 0b0101 {
		t.Fatal("View returned the record's own bits")
	}
	if !s.ChokesUs(p1) || s.ChokesUs(p2) {
		t.Fatal("ChokesUs: want p1 only")
	}
	s.view.gotInterest(p1, root, false)
	s.view.gotChoke(p1, false)
	if s.View(root)[0].Interested || s.ChokesUs(p1) {
		t.Fatal("interest and choke do not follow the last message")
	}
	if len(s.View(a)) != 0 {
		t.Fatal("a root nobody named has a view")
	}
	s.view.forget(p1)
	if v := s.View(root); len(v) != 1 || v[0].Peer != p2 {
		t.Fatalf("after forget: %v", v)
	}
	// A peer the service no longer knows is dropped, whatever it said.
	p3 := peer.ID("peer-3")
	s.view.gotMap(p3, &Message{Kind: KindMap, Root: root, Complete: true})
	if v := s.View(root); len(v) != 1 || v[0].Peer != p2 || s.view.peers[p3] != nil {
		t.Fatalf("a departed peer's map is still viewed: %v", v)
	}

	// Bounds: roots per peer, then entries per peer.
	for i := range maxViewRoots + 10 {
		s.view.gotHaves(p2, testCID(t, fmt.Sprint("r", i)), []cid.Cid{a})
	}
	if n := len(s.view.peers[p2].roots); n != maxViewRoots {
		t.Fatalf("%d roots kept for one peer, want %d", n, maxViewRoots)
	}
	many := make([]cid.Cid, maxViewEntries+5)
	for i := range many {
		many[i] = testCID(t, fmt.Sprint("c", i))
	}
	s.view.gotHaves(p2, root, many)
	if n := s.view.peers[p2].entries; n != maxViewEntries {
		t.Fatalf("%d entries kept for one peer, want %d", n, maxViewEntries)
	}
}
