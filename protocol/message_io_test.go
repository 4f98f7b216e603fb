package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestReadFrameSizes: frames on both sides of every pool class boundary
// come back byte for byte, in order, from one stream, whether the stream
// delivers everything at once or in halves; each frame's buffer is of the
// class the growth rule reaches (never more than four times what arrived
// plus one chunk), and reused frames do not leak old bytes into new ones.
func TestReadFrameSizes(t *testing.T) {
	sizes := []int{0, 1, 100, 3, readChunk + 7, 1 << 20, 1<<20 + 45}
	for _, c := range rxClasses {
		sizes = append(sizes, c-1, c)
		if c < MaxMessageSize {
			sizes = append(sizes, c+1)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var stream bytes.Buffer
	var want [][]byte
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32()) | 1 // never zero, so stale zeros would show
		}
		if n > 0 {
			b[0] = byte(i)
		}
		want = append(want, b)
		stream.Write(binary.AppendUvarint(nil, uint64(n)))
		stream.Write(b)
	}
	for _, half := range []bool{false, true} {
		var src = bytes.NewReader(stream.Bytes())
		br := bufio.NewReader(src)
		if half {
			br = bufio.NewReader(iotest.HalfReader(src))
		}
		for i, w := range want {
			f, err := readFrame(br)
			if err != nil {
				t.Fatalf("frame %d (%d bytes, half=%v): %v", i, len(w), half, err)
			}
			if !bytes.Equal(f.bytes(), w) {
				t.Fatalf("frame %d (%d bytes, half=%v): got %d bytes that differ", i, len(w), half, len(f.bytes()))
			}
			if got, limit := cap(f.bytes()), max(readChunk, min(MaxMessageSize, 4*len(w)+readChunk)); got > limit {
				t.Fatalf("frame %d of %d bytes held a %d-byte buffer, over the %d the growth rule allows", i, len(w), got, limit)
			}
			f.release()
			f.release() // a second release is a no-op
		}
		if _, err := readFrame(br); err == nil {
			t.Fatal("reading past the last frame succeeded")
		}
	}
}

// pieceWriter records each Write of a frame, and fails the one numbered
// failAt (counting from 1; 0: none).
type pieceWriter struct {
	pieces [][]byte // the slices passed to Write, as passed
	out    bytes.Buffer
	failAt int
}

var errPieceWriter = errors.New("pieceWriter: write failed")

func (w *pieceWriter) Write(p []byte) (int, error) {
	w.pieces = append(w.pieces, p)
	if len(w.pieces) == w.failAt {
		return len(p) / 2, errPieceWriter
	}
	return w.out.Write(p)
}

// TestWriteFrame: the frame writeFrame sends in pieces is byte for byte
// the one appendFrame encodes, in both protocol forms, for messages on
// both sides of every threshold (block data around txDirect, encodings
// around the send buffer); the data of a large block goes to the stream
// as the block's own slice (no copy), no piece but such data is larger
// than a send buffer, and a failed piece stops the frame there.
func TestWriteFrame(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	var wants []Entry
	var presences []Presence
	for i := range 2000 {
		wants = append(wants, Entry{CID: fakeCID(i), Priority: int32(i), WantType: WantType(i % 2), SendDontHave: i%3 == 0})
		presences = append(presences, Presence{CID: fakeCID(i + 5000), Type: PresenceType(i % 2)})
	}
	var small []Block
	for i := range 40 {
		small = append(small, Block{CID: fakeCID(i + 9000), Data: data(1 + i*97)})
	}
	msgs := map[string]*Message{
		"empty":          {},
		"sample":         sampleMessage(t),
		"many wants":     {Full: true, Wants: wants},
		"many presences": {Presences: presences, PendingBytes: -7},
		"small blocks":   {Blocks: small, Presences: presences[:300]},
		"thresholds": {Wants: wants[:100], Blocks: []Block{
			{CID: fakeCID(1), Data: data(txDirect - 1)}, {CID: fakeCID(2), Data: data(txDirect)},
			{CID: fakeCID(3), Data: data(txBufSize/2 - 1)}, {CID: fakeCID(4), Data: data(txBufSize + 1)},
			{CID: fakeCID(5)},
		}},
		"one MiB block":   {Blocks: []Block{{CID: fakeCID(6), Data: data(1 << 20)}}},
		"blocks then all": {Blocks: []Block{{CID: fakeCID(7), Data: data(300 << 10)}, {CID: fakeCID(8), Data: data(5)}, {CID: fakeCID(9), Data: data(700 << 10)}}, Wants: wants[:5], Presences: presences[:5], PendingBytes: 1},
	}
	for name, m := range msgs {
		for _, v0 := range []bool{false, true} {
			want, err := m.appendFrame(nil, v0)
			if err != nil {
				t.Fatal(err)
			}
			var w pieceWriter
			n, err := m.writeFrame(&w, v0)
			if err != nil || n != len(want) || !bytes.Equal(w.out.Bytes(), want) {
				t.Fatalf("%s (v0 %v): wrote %d bytes (%v) in %d pieces, differing from the %d-byte encoding", name, v0, n, err, len(w.pieces), len(want))
			}
			direct := map[*byte]bool{}
			for _, blk := range m.Blocks {
				if len(blk.Data) >= txDirect {
					direct[&blk.Data[0]] = true
				}
			}
			seen := 0
			for i, p := range w.pieces {
				switch {
				case direct[&p[0]]:
					seen++
				case len(p) > txBufSize:
					t.Fatalf("%s (v0 %v): piece %d of %d bytes is over a send buffer", name, v0, i, len(p))
				}
			}
			if seen != len(direct) {
				t.Fatalf("%s (v0 %v): %d of %d large blocks were written from their own memory", name, v0, seen, len(direct))
			}
			if len(w.pieces) < 2 {
				continue
			}
			fail := pieceWriter{failAt: 2}
			n, err = m.writeFrame(&fail, v0)
			if !errors.Is(err, errPieceWriter) || len(fail.pieces) != 2 || n != len(w.pieces[0])+len(w.pieces[1])/2 {
				t.Fatalf("%s (v0 %v): failing the 2nd of %d pieces: %d pieces, %d bytes, %v", name, v0, len(w.pieces), len(fail.pieces), n, err)
			}
		}
	}
	data1 := make([]byte, MaxBlockSize)
	big := &Message{Blocks: []Block{{CID: fakeCID(1), Data: data1}, {CID: fakeCID(2), Data: data1}, {CID: fakeCID(3), Data: data1}}}
	var w pieceWriter
	if _, err := big.writeFrame(&w, false); !errors.Is(err, ErrMessageTooLarge) || len(w.pieces) != 0 {
		t.Fatalf("writeFrame of %d bytes: %v after %d pieces", big.Size(), err, len(w.pieces))
	}
}
