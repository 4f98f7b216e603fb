package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
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
	sizes := []int{0, 1, 100, readChunk - 1, readChunk, readChunk + 1,
		5*readChunk - 1, 5 * readChunk, 5*readChunk + 1, MaxMessageSize - 1, MaxMessageSize, 3, readChunk + 7}
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
