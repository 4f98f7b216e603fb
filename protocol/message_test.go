package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func rawCID(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func testBlock(t testing.TB, data []byte) Block {
	return Block{CID: rawCID(t, data), Data: data}
}

// sampleMessage uses every field, with negative and large values.
func sampleMessage(t testing.TB) *Message {
	b1 := testBlock(t, []byte("hello"))
	b2 := testBlock(t, bytes.Repeat([]byte{7}, 1000))
	return &Message{
		Full: true,
		Wants: []Entry{
			{CID: b1.CID, Priority: 5, WantType: WantHave, SendDontHave: true},
			{CID: b2.CID, Priority: -3, Cancel: true},
			{CID: rawCID(t, []byte("x")), Priority: 1 << 30},
		},
		Blocks: []Block{b1, b2},
		// Different CIDs from the blocks: boxo drops a presence for a CID
		// whose block is in the same message.
		Presences:    []Presence{{CID: rawCID(t, []byte("p1")), Type: Have}, {CID: rawCID(t, []byte("p2")), Type: DontHave}},
		PendingBytes: 12345,
	}
}

func messagesEqual(a, b *Message) bool {
	if a.Full != b.Full || a.PendingBytes != b.PendingBytes ||
		len(a.Wants) != len(b.Wants) || len(a.Blocks) != len(b.Blocks) || len(a.Presences) != len(b.Presences) {
		return false
	}
	for i := range a.Wants {
		x, y := a.Wants[i], b.Wants[i]
		if !x.CID.Equals(y.CID) || x.Priority != y.Priority || x.Cancel != y.Cancel ||
			x.WantType != y.WantType || x.SendDontHave != y.SendDontHave {
			return false
		}
	}
	for i := range a.Blocks {
		if !a.Blocks[i].CID.Equals(b.Blocks[i].CID) || !bytes.Equal(a.Blocks[i].Data, b.Blocks[i].Data) {
			return false
		}
	}
	for i := range a.Presences {
		if !a.Presences[i].CID.Equals(b.Presences[i].CID) || a.Presences[i].Type != b.Presences[i].Type {
			return false
		}
	}
	return true
}

func TestMessageRoundTrip(t *testing.T) {
	for name, m := range map[string]*Message{
		"empty":       {},
		"sample":      sampleMessage(t),
		"full-only":   {Full: true},
		"empty-block": {Blocks: []Block{testBlock(t, nil)}},
	} {
		t.Run(name, func(t *testing.T) {
			enc := m.Marshal()
			if len(enc) != m.Size() {
				t.Fatalf("Size()=%d, Marshal produced %d bytes", m.Size(), len(enc))
			}
			got, err := DecodeMessage(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !messagesEqual(m, got) {
				t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, m)
			}
			var buf bytes.Buffer
			if err := WriteMessage(&buf, m); err != nil {
				t.Fatal(err)
			}
			if err := WriteMessage(&buf, m); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(&buf)
			for range 2 {
				got, err := ReadMessage(r)
				if err != nil {
					t.Fatal(err)
				}
				if !messagesEqual(m, got) {
					t.Fatal("stream round trip mismatch")
				}
			}
			if _, err := ReadMessage(r); !errors.Is(err, io.EOF) {
				t.Fatalf("after last message: %v, want io.EOF", err)
			}
		})
	}
}

// TestMessageV0Blocks: the Bitswap 1.0.0 `blocks` field carries raw bytes
// whose CID is CIDv0 (sha2-256, dag-pb).
func TestMessageV0Blocks(t *testing.T) {
	data := []byte{0x0a, 0x02, 0x08, 0x01} // any bytes; 1.0.0 assumes dag-pb
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := cid.NewCidV0(h)
	m := &Message{Wants: []Entry{{CID: want, Priority: 1}}, Blocks: []Block{{CID: want, Data: data}},
		Presences: []Presence{{CID: want}}}
	got, err := DecodeMessage(m.marshalV0())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Blocks) != 1 || !got.Blocks[0].CID.Equals(want) || !bytes.Equal(got.Blocks[0].Data, data) {
		t.Fatalf("v0 block decoded as %+v, want CID %s", got.Blocks, want)
	}
	if len(got.Presences) != 0 {
		t.Fatalf("v0 encoding carried presences: %+v", got.Presences)
	}
	if len(got.Wants) != 1 || !got.Wants[0].CID.Equals(want) {
		t.Fatalf("v0 wants = %+v", got.Wants)
	}
}

func TestReadMessageErrors(t *testing.T) {
	valid := (&Message{Wants: []Entry{{CID: rawCID(t, []byte("a"))}}}).Marshal()
	frame := func(n uint64, body []byte) []byte {
		return append(binary.AppendUvarint(nil, n), body...)
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, io.EOF},
		{"over the limit", frame(MaxMessageSize+1, nil), ErrMessageTooLarge},
		{"huge varint", frame(1<<40, nil), ErrMessageTooLarge},
		{"cut inside the prefix", []byte{0x80}, ErrMalformedMessage},
		{"cut inside the body", frame(4<<20, []byte("short")), ErrMalformedMessage},
		{"garbage body", frame(3, []byte{0xff, 0xff, 0xff}), ErrMalformedMessage},
		{"entry without CID", frame(4, []byte{0x0a, 0x02, 0x0a, 0x00}), ErrMalformedMessage},
		{"pendingBytes only", frame(2, []byte{0x28, 0x01}), nil},
		{"wantlist as varint", frame(2, []byte{0x08, 0x01}), ErrMalformedMessage},
		{"valid", frame(uint64(len(valid)), valid), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadMessage(bufio.NewReader(bytes.NewReader(tc.in)))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	data := make([]byte, MaxBlockSize)
	big := &Message{Blocks: []Block{{CID: fakeCID(1), Data: data}, {CID: fakeCID(2), Data: data}, {CID: fakeCID(3), Data: data}}}
	if err := WriteMessage(io.Discard, big); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("WriteMessage of %d bytes: %v", big.Size(), err)
	}
	tooBig := Block{CID: fakeCID(4), Data: make([]byte, MaxBlockSize+1)} // size is checked before hashing
	if _, err := DecodeMessage((&Message{Blocks: []Block{tooBig}}).Marshal()); !errors.Is(err, ErrBlockTooLarge) {
		t.Fatalf("decoding a %d-byte block: %v", len(tooBig.Data), err)
	}
}
