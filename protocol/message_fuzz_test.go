package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"google.golang.org/protobuf/encoding/protowire"
)

func fuzzSeeds(f *testing.F) [][]byte {
	m := sampleMessage(f)
	withUnknown := protowire.AppendTag(m.Marshal(), 99, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte("future field"))
	return [][]byte{
		nil,
		(&Message{}).Marshal(),
		m.Marshal(),
		m.marshalV0(),
		withUnknown,
		(&Message{Full: true, Wants: []Entry{{CID: rawCID(f, []byte("a")), Priority: -1, WantType: WantHave}}}).Marshal(),
	}
}

// FuzzDecodeMessage: DecodeMessage never panics; what it accepts has
// blocks whose CIDs match their data, re-encodes to the same message (and
// to the same bytes when sent in pieces, writeFrame), and is accepted by
// boxo too (we are at least as strict).
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		for _, blk := range m.Blocks {
			c, err := blk.CID.Prefix().Sum(blk.Data)
			if err != nil || !c.Equals(blk.CID) {
				t.Fatalf("block CID %s does not match its data (%v)", blk.CID, err)
			}
		}
		again, err := DecodeMessage(m.Marshal())
		if err != nil {
			t.Fatalf("re-encoding of an accepted message is rejected: %v", err)
		}
		if !messagesEqual(m, again) {
			t.Fatalf("re-encoding changed the message:\n%+v\n%+v", m, again)
		}
		for _, v0 := range []bool{false, true} {
			want, err := m.appendFrame(nil, v0)
			var sent pieceWriter
			if _, werr := m.writeFrame(&sent, v0); err != nil || werr != nil || !bytes.Equal(sent.out.Bytes(), want) {
				t.Fatalf("the frame sent in pieces (v0 %v, %v) differs from the encoding (%v)", v0, werr, err)
			}
		}
		var framed bytes.Buffer
		framed.Write(protowire.AppendVarint(nil, uint64(len(b))))
		framed.Write(b)
		if _, _, err := bsmsg.FromNet(&framed); err != nil {
			t.Fatalf("we accepted a message boxo rejects: %v", err)
		}
	})
}

// FuzzReadMessage: reading a stream of frames never panics, never returns
// a message together with an error (nor neither), and refuses a frame that
// announces more than MaxMessageSize.
func FuzzReadMessage(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		var buf bytes.Buffer
		buf.Write(protowire.AppendVarint(nil, uint64(len(s))))
		buf.Write(s)
		f.Add(buf.Bytes())
	}
	f.Add(protowire.AppendVarint(nil, MaxMessageSize+1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, k := protowire.ConsumeVarint(b); k > 0 && n > MaxMessageSize {
			if _, err := ReadMessage(bufio.NewReader(bytes.NewReader(b))); !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("frame announces %d bytes; err = %v, want ErrMessageTooLarge", n, err)
			}
			return
		}
		r := bufio.NewReader(bytes.NewReader(b))
		for range 100 {
			m, err := ReadMessage(r)
			if err != nil {
				if m != nil {
					t.Fatal("message and error together")
				}
				return
			}
			if m == nil {
				t.Fatal("nil message without error")
			}
		}
	})
}
