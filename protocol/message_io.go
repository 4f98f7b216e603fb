package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// readChunk is how much readFrame takes ahead of the data that has
// actually arrived, and the buffer then grows fourfold as data arrives: a
// peer that announces a 4 MiB message and trickles bytes makes us hold at
// most four times what it sent (plus one chunk), not the announced size,
// while a message up to 1.25 MiB (one 1 MiB block) costs one regrowth.
const readChunk = 256 << 10

// Receive buffers come from three pools, one per capacity class. With the
// growth rule above a frame only ever needs these three sizes: the first
// chunk, four chunks plus one (a 1 MiB block and its framing), and a whole
// maximal message.
var rxClasses = [...]int{readChunk, 5 * readChunk, MaxMessageSize}

var rxPools [len(rxClasses)]sync.Pool

// rxFrame is one received frame in a pooled buffer.
//
// Ownership rule: the goroutine that read the frame owns it until it
// calls release or hands it on (Network's read loop hands each frame to
// its stream's dispatcher, which then owns it), and nobody may touch the
// bytes (nor any slice into them, such as a decoded Block's Data) after
// release: the buffer goes back to the pool and the next frame read on any
// stream overwrites it. The dispatcher releases the frame once dispatch
// has returned, which is why a
// Receiver must not keep block data past ReceiveMessage (it copies what it
// keeps; a Blocks store copies into its own memory or writes it out).
// Under the race detector an access after release shows up as a race with
// the next reader of the buffer.
type rxFrame struct {
	buf   *[]byte // the pooled buffer; nil once released
	class int
}

// bytes is the frame's content.
func (f *rxFrame) bytes() []byte { return *f.buf }

// release gives the buffer back; the frame must not be used afterwards.
// Safe to call twice.
func (f *rxFrame) release() {
	if f.buf == nil {
		return
	}
	*f.buf = (*f.buf)[:0]
	rxPools[f.class].Put(f.buf)
	f.buf = nil
}

// rxClass is the smallest class that holds n bytes.
func rxClass(n int) int {
	for i, c := range rxClasses {
		if n <= c {
			return i
		}
	}
	panic(fmt.Sprintf("protocol: receive buffer of %d bytes asked for; frames are at most %d", n, MaxMessageSize))
}

// getRx returns an empty pooled buffer that holds at least n bytes.
func getRx(n int) rxFrame {
	class := rxClass(n)
	if bp, ok := rxPools[class].Get().(*[]byte); ok {
		return rxFrame{buf: bp, class: class}
	}
	b := make([]byte, 0, rxClasses[class])
	return rxFrame{buf: &b, class: class}
}

// ReadMessage reads one unsigned-varint length-delimited message, the
// framing Bitswap uses on a libp2p stream. A length over MaxMessageSize is
// refused before anything is allocated. At a clean end of stream (no byte of
// a new message) it returns io.EOF. Block data in the result is owned by the
// caller (a fresh buffer per message; Network's own read loop uses pooled
// buffers instead, see rxFrame).
func ReadMessage(r *bufio.Reader) (*Message, error) {
	f, err := readFrame(r)
	if err != nil {
		return nil, err
	}
	buf := bytes.Clone(f.bytes())
	f.release()
	if buf == nil {
		buf = []byte{}
	}
	return DecodeMessage(buf)
}

// readFrame reads one length-delimited frame into a pooled buffer; see
// ReadMessage and readChunk. On error nothing is held.
func readFrame(r *bufio.Reader) (rxFrame, error) {
	n, err := readLength(r)
	if err != nil {
		return rxFrame{}, err
	}
	size := int(n)
	f := getRx(min(size, readChunk))
	buf := *f.buf
	for len(buf) < size {
		if len(buf) == cap(buf) {
			// Move to the class of four times what arrived plus one
			// chunk, or of the whole frame if that is no more: a frame
			// just over 1 MiB (one 1 MiB block) then costs one move of
			// its first chunk.
			next := getRx(min(size, 4*len(buf)+readChunk))
			*next.buf = append(*next.buf, buf...)
			*f.buf = buf
			f.release()
			f, buf = next, *next.buf
		}
		k, err := r.Read(buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < size {
			*f.buf = buf
			f.release()
			if errors.Is(err, io.EOF) {
				return rxFrame{}, fmt.Errorf("%w: stream ended after %d of %d message bytes", ErrMalformedMessage, len(buf), size)
			}
			return rxFrame{}, err
		}
	}
	*f.buf = buf
	return f, nil
}

// readLength reads the unsigned-varint length prefix and refuses lengths
// over MaxMessageSize as soon as the prefix is long enough to show it.
func readLength(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("%w: stream ended inside a length prefix", ErrMalformedMessage)
			}
			return 0, err
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
		if i == 3 { // a fifth byte would make the length at least 2^28
			return 0, fmt.Errorf("%w: peer announced over %d bytes, limit %d", ErrMessageTooLarge, 1<<28, MaxMessageSize)
		}
	}
	if x > MaxMessageSize {
		return 0, fmt.Errorf("%w: peer announced %d bytes, limit %d", ErrMessageTooLarge, x, MaxMessageSize)
	}
	return x, nil
}

// WriteMessage writes m with its unsigned-varint length prefix in a single
// Write call. A message over MaxMessageSize is refused (ErrMessageTooLarge)
// because no peer would accept it.
func WriteMessage(w io.Writer, m *Message) error {
	b, err := m.frame(false)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// frame returns the length-prefixed encoding of m, in the 1.0.0 form if v0.
func (m *Message) frame(v0 bool) ([]byte, error) {
	return m.appendFrame(nil, v0)
}

// appendFrame appends the length-prefixed encoding of m to dst.
func (m *Message) appendFrame(dst []byte, v0 bool) ([]byte, error) {
	size := m.Size()
	if v0 {
		size = m.sizeV0()
	}
	if size > MaxMessageSize {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, size, MaxMessageSize)
	}
	dst = slices.Grow(dst, binary.MaxVarintLen32+size)
	dst = binary.AppendUvarint(dst, uint64(size))
	return m.appendTo(dst, v0), nil
}
