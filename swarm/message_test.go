package swarm

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

func testCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func testMessages(t testing.TB) []*Message {
	root, a, b := testCID(t, "root"), testCID(t, "a"), testCID(t, "b")
	id, err := peer.Decode("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")
	if err != nil {
		t.Fatal(err)
	}
	addr := ma.StringCast("/ip4/127.0.0.1/udp/4040/quic-v1")
	return []*Message{
		{Kind: KindMap, Root: root, Complete: true},
		{Kind: KindMap, Root: root, Interested: true, Ask: true, Segments: []Segment{{Parent: root, Bits: []byte{0xff, 0x01}}, {Parent: a, Bits: []byte{}}}},
		{Kind: KindHave, Root: root, CIDs: []cid.Cid{a, b}},
		{Kind: KindInterest, Root: root, Interested: true},
		{Kind: KindInterest, Root: root},
		{Kind: KindChoke, Choked: true},
		{Kind: KindChoke},
		{Kind: KindPeers, Root: root, Peers: []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{addr}}, {ID: id}}},
		{Kind: KindMap, Root: root, Interested: true, SaysWant: true, Segments: []Segment{{Parent: root, Bits: []byte{0x02}}}},
		{Kind: KindWant, Root: root, Interested: true},
		{Kind: KindWant, Root: root},
	}
}

// TestMessageRoundTrip: every kind survives framing, writing and reading
// unchanged, back to back on one stream.
func TestMessageRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	msgs := testMessages(t)
	for _, m := range msgs {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for i, want := range msgs {
		got, err := ReadMessage(r)
		if err != nil {
			t.Fatalf("message %d (%s): %v", i, want.Kind, err)
		}
		if !bytes.Equal(got.Encode(nil), want.Encode(nil)) || got.Kind != want.Kind || !got.Root.Equals(want.Root) {
			t.Fatalf("message %d: got %+v, want %+v", i, got, want)
		}
		if want.Kind == KindPeers && !reflect.DeepEqual(got.Peers[0].Addrs[0].String(), want.Peers[0].Addrs[0].String()) {
			t.Fatalf("peer address %v, want %v", got.Peers[0].Addrs, want.Peers[0].Addrs)
		}
	}
}

// TestDecodeRefuses: wrong versions, unknown kinds, truncation, trailing
// bytes and over-limit counts are refused with the right error.
func TestDecodeRefuses(t *testing.T) {
	good := testMessages(t)[1].Encode(nil)
	over := append([]byte{Version, byte(KindHave)}, appendCID(nil, testCID(t, "r"))...)
	over = append(over, 0xff, 0xff, 0x03) // a CID count past MaxCIDs
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version", append([]byte{Version + 1}, good[1:]...), ErrMalformed},
		{"kind", []byte{Version, 99, 1, 2}, ErrUnknownKind},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"too many", over, ErrTooLarge},
		{"bad flag", []byte{Version, byte(KindChoke), 2}, ErrMalformed},
	}
	for _, c := range cases {
		if _, err := Decode(c.body); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// A frame longer than the limit is refused before it is read.
	var buf bytes.Buffer
	buf.Write([]byte{0x81, 0x80, 0x80, 0x01}) // 2 MiB + 1
	if _, err := ReadMessage(bufio.NewReader(&buf)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized frame: err = %v, want ErrTooLarge", err)
	}
}

// FuzzDecode: the decoder never panics, and whatever it accepts encodes
// back to the same bytes (one meaning per message).
func FuzzDecode(f *testing.F) {
	for _, m := range testMessages(f) {
		f.Add(m.Encode(nil))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if err != nil {
			return
		}
		again := m.Encode(nil)
		if !bytes.Equal(again, body) {
			m2, err := Decode(again)
			if err != nil || !bytes.Equal(m2.Encode(nil), again) {
				t.Fatalf("accepted %x, re-encoded %x does not round-trip: %v", body, again, err)
			}
		}
	})
}
