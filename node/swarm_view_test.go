package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/swarm"
)

// TestPeerHolds: which blocks of a walk a swarm peer holds, from what it
// said. The walk: root → [x, y]; x → [x0 … x8] (nine links, so bit 8 is
// in the second byte); y raw.
func TestPeerHolds(t *testing.T) {
	mk := func(s string) cid.Cid {
		h, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
		return cid.NewCidV1(cid.DagProtobuf, h)
	}
	root, x, y := mk("root"), mk("x"), mk("y")
	blocks := []viewBlock{{c: root, parent: -1}, {c: x, parent: 0, link: 0}}
	for i := range 9 {
		blocks = append(blocks, viewBlock{c: mk(fmt.Sprint("x", i)), parent: 1, link: i})
	}
	blocks = append(blocks, viewBlock{c: y, parent: 0, link: 1})
	for _, tc := range []struct {
		name string
		v    swarm.PeerView
		want string
	}{
		{"nothing", swarm.PeerView{}, "000000000000"},
		{"complete", swarm.PeerView{Complete: true}, "111111111111"},
		// The root's segment says it holds y (bit 1) and the root itself.
		{"root segment", swarm.PeerView{Segments: []swarm.Segment{{Parent: root, Bits: []byte{0b10}}}}, "100000000001"},
		// x's segment: x itself, x0 and x8 (byte 1, bit 0).
		{"second byte", swarm.PeerView{Segments: []swarm.Segment{{Parent: x, Bits: []byte{0b1, 0b1}}}}, "011000000010"},
		{"short bits", swarm.PeerView{Segments: []swarm.Segment{{Parent: x, Bits: []byte{0xff}}}}, "011111111100"},
		{"haves", swarm.PeerView{Haves: []cid.Cid{y, blocks[4].c, mk("elsewhere")}}, "000010000001"},
	} {
		got := ""
		for _, h := range peerHolds(tc.v, blocks) {
			got += map[bool]string{true: "1", false: "0"}[h]
		}
		if got != tc.want {
			t.Errorf("%s: holds %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestCells: a bar folds blocks into at most limit cells; a cell shows
// its rarest block's availability and how many of its blocks are held.
func TestCells(t *testing.T) {
	for _, tc := range []struct {
		counts []int
		held   string
		limit  int
		want   string
	}{
		{nil, "", 4, "1 [] []"},
		{[]int{2, 0, 1}, "101", 4, "1 [2 0 1] [1 0 1]"},
		{[]int{2, 0, 1, 3, 3}, "10111", 2, "3 [0 3] [2 2]"},
		{[]int{5, 4, 3, 2, 1, 0, 1}, "0000001", 3, "3 [3 0 1] [0 0 1]"},
	} {
		held := make([]bool, len(tc.held))
		for i, c := range tc.held {
			held[i] = c == '1'
		}
		per, avail, local := cells(tc.counts, held, tc.limit)
		if got := fmt.Sprint(per, " ", avail, " ", local); got != tc.want {
			t.Errorf("cells(%v, %s, %d) = %s, want %s", tc.counts, tc.held, tc.limit, got, tc.want)
		}
	}
}

// TestWalkCache: a walk serves for walkTTL, then is gone; past twice the
// roots the view draws the cache starts again.
func TestWalkCache(t *testing.T) {
	mk := func(s string) cid.Cid {
		h, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
		return cid.NewCidV1(cid.Raw, h)
	}
	var w walkCache
	t0 := time.Unix(1_800_000_000, 0)
	a := mk("a")
	w.put(a, []viewBlock{{c: a, held: true}}, t0)
	if b, ok := w.get(a, t0.Add(walkTTL-time.Millisecond)); !ok || len(b) != 1 || b[0].c != a {
		t.Fatalf("fresh walk: %v %v", b, ok)
	}
	if _, ok := w.get(a, t0.Add(walkTTL)); ok {
		t.Fatal("an expired walk served")
	}
	for i := range 2*maxViewShared + 1 {
		w.put(mk(fmt.Sprint(i)), nil, t0)
	}
	if n := len(w.m); n > 2*maxViewShared {
		t.Fatalf("%d walks kept", n)
	}
}
