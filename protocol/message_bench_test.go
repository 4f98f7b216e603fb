package protocol

import (
	"bytes"
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bspb "github.com/ipfs/boxo/bitswap/message/pb"
	blocks "github.com/ipfs/go-block-format"
)

// Benchmarks of the wire codec against boxo's (generated protobuf), on the
// same messages: one with 1 MiB of blocks (decode hashes them: sha2-256
// dominates) and one with 1000 wants.

func benchMessages(b *testing.B) map[string]*Message {
	blks := seqBlocks(b, 16, 64<<10)
	wants := make([]Entry, 1000)
	for i := range wants {
		wants[i] = Entry{CID: fakeCID(i), Priority: int32(1000 - i), WantType: WantHave, SendDontHave: true}
	}
	return map[string]*Message{"blocks-1MiB": {Blocks: blks}, "wants-1000": {Wants: wants}}
}

func toBoxo(m *Message) bsmsg.BitSwapMessage {
	bm := bsmsg.New(m.Full)
	for _, e := range m.Wants {
		bm.AddEntry(e.CID, e.Priority, bspb.Message_Wantlist_WantType(e.WantType), e.SendDontHave)
	}
	for _, b := range m.Blocks {
		blk, _ := blocks.NewBlockWithCid(b.Data, b.CID)
		bm.AddBlock(blk)
	}
	return bm
}

func BenchmarkMarshal(b *testing.B) {
	for name, m := range benchMessages(b) {
		b.Run(name+"/shoal", func(b *testing.B) {
			b.SetBytes(int64(m.Size()))
			for b.Loop() {
				_ = m.Marshal()
			}
		})
		bm := toBoxo(m)
		b.Run(name+"/boxo", func(b *testing.B) {
			b.SetBytes(int64(m.Size()))
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				_ = bm.ToNetV1(&buf)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for name, m := range benchMessages(b) {
		var framed bytes.Buffer
		if err := WriteMessage(&framed, m); err != nil {
			b.Fatal(err)
		}
		enc := m.Marshal()
		b.Run(name+"/shoal", func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := DecodeMessage(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/boxo", func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, _, err := bsmsg.FromNet(bytes.NewReader(framed.Bytes())); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
