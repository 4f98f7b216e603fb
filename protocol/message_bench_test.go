package protocol

import (
	"bufio"
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

// BenchmarkReceiveFrame is the read loop's work per message carrying one
// 1 MiB block, without the transport: read the frame from a buffered
// stream into a pooled buffer, decode it (one sha2-256), give the buffer
// back. heap-B/B is what the Go heap allocates per byte received; with
// pooled frames it is the decoder's few small objects (the message, the
// CID), not the block. Run with -benchmem to see allocs/op too.
func BenchmarkReceiveFrame(b *testing.B) {
	m := &Message{Blocks: seqBlocks(b, 1, 1<<20)}
	var framed bytes.Buffer
	if err := WriteMessage(&framed, m); err != nil {
		b.Fatal(err)
	}
	frame := framed.Bytes()
	src := bytes.NewReader(frame)
	r := bufio.NewReaderSize(src, 64<<10)
	b.SetBytes(int64(len(frame)))
	mem0 := heapAllocated()
	for b.Loop() {
		src.Reset(frame)
		r.Reset(src)
		f, err := readFrame(r)
		if err != nil {
			b.Fatal(err)
		}
		got, err := DecodeMessage(f.bytes())
		if err != nil || len(got.Blocks) != 1 {
			b.Fatalf("decoded %d blocks, err %v", len(got.Blocks), err)
		}
		f.release()
	}
	b.ReportMetric(float64(heapAllocated()-mem0)/float64(b.N)/float64(len(frame)), "heap-B/B")
}
