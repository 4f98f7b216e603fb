package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// readChunk is how much readFrame takes ahead of the data that has
// actually arrived, and the buffer then grows fourfold as data arrives: a
// peer that announces a 4 MiB message and trickles bytes makes us hold at
// most four times what it sent (plus one chunk), not the announced size,
// while a message up to 1.25 MiB (one 1 MiB block) costs one regrowth.
const readChunk = 256 << 10

// Receive buffers come from five pools, one per capacity class. With the
// growth rule above a frame only ever needs these sizes: a small frame
// (wants, HAVEs: a few KiB), the first chunk, one 1 MiB block with its
// framing (the unixfs-v1-2025 leaf, the usual large frame), four chunks
// plus one (any other frame up to 1.25 MiB), and a whole maximal message.
// The small class keeps a stream that only carries control messages from
// holding a 256 KiB buffer for each; the 1 MiB class makes the buffers
// that carry most bytes a fifth smaller than the class above it.
var rxClasses = [...]int{16 << 10, readChunk, 1<<20 + 4<<10, 5 * readChunk, MaxMessageSize}

// rxPools are the pools of rxClasses. Kept free while idle, at most: 32 ×
// 16 KiB + 6 × 256 KiB + 6 × 1 MiB + 2 × 1.25 MiB = 10.5 MiB, and no
// maximal buffer (those are rare and only spill into a sync.Pool). Six
// block buffers are what three peers sending blocks at once use: each has
// one frame being read and one in dispatch (rxBudget).
var rxPools = [len(rxClasses)]*bufPool{
	newBufPool(rxClasses[0], 32),
	newBufPool(rxClasses[1], 6),
	newBufPool(rxClasses[2], 6),
	newBufPool(rxClasses[3], 2),
	newBufPool(rxClasses[4], 0),
}

// rxFrame is one received frame in a pooled buffer.
//
// Ownership rule: the goroutine that read the frame owns it until it
// calls release or hands it on (Network's read loop hands each frame to
// its stream's dispatcher, which then owns it), and nobody may touch the
// bytes (nor any slice into them, such as a decoded Block's Data) after
// release: the buffer goes back to the pool and the next frame read on any
// stream overwrites it (bufPool). The dispatcher releases the frame once
// dispatch has returned, which is why a
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
	rxPools[f.class].put(f.buf)
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
	return rxFrame{buf: rxPools[class].get(), class: class}
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

// frameSize is the length of m's encoding (without the length prefix), in
// the 1.0.0 form if v0, or ErrMessageTooLarge.
func (m *Message) frameSize(v0 bool) (int, error) {
	size := m.Size()
	if v0 {
		size = m.sizeV0()
	}
	if size > MaxMessageSize {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, size, MaxMessageSize)
	}
	return size, nil
}

// appendFrame appends the length-prefixed encoding of m to dst.
func (m *Message) appendFrame(dst []byte, v0 bool) ([]byte, error) {
	size, err := m.frameSize(v0)
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, binary.MaxVarintLen32+size)
	dst = binary.AppendUvarint(dst, uint64(size))
	return m.appendTo(dst, v0, nil), nil
}

// Sending a frame (writeFrame) copies none of a large block's bytes: the
// encoding around the blocks goes through a small pooled buffer, written
// whenever it holds txBufSize/2 bytes or more, and the data of a block of
// txDirect bytes or more is written from the block itself (the stream's
// Write copies it into the transport's frames or packets, as it copies any
// buffer). Encoding each frame into one buffer of the frame's size, as
// before, copied every block once more on the sender and took a 1 MiB
// buffer per concurrent send, which a fetch paid for afresh (3–5 MiB of
// the 34–43 MiB allocated per 256 MiB fetched over QUIC, bench/exchange.md).
//
// Over QUIC a small Write is copied into the stream's next STREAM frame and
// returns at once, so a block's header joins the tail of whatever was
// written before it in one packet; writing the header together with the
// first bytes of the data instead would end each block with a partly
// filled packet of its own.
const (
	txBufSize = 16 << 10
	txDirect  = 4 << 10
)

// txPool holds the send buffers (ownership rule at bufPool: writeFrame
// takes one and gives it back before it returns).
var txPool = newBufPool(txBufSize, 16)

// writeFrame writes m's frame (length prefix and encoding, the 1.0.0 form
// if v0) to w in as many Writes as it takes (see txBufSize) and returns the
// bytes written. m's block data is only read, and not after writeFrame
// returns. A message over MaxMessageSize is refused before anything is
// written; after a failed Write the stream holds a partial frame and must
// be reset.
func (m *Message) writeFrame(w io.Writer, v0 bool) (int, error) {
	size, err := m.frameSize(v0)
	if err != nil {
		return 0, err
	}
	return m.writeSizedFrame(w, v0, size)
}

// writeSizedFrame is writeFrame for a caller that has m's frameSize
// already (the sender, which sizes its write deadline by it).
func (m *Message) writeSizedFrame(w io.Writer, v0 bool, size int) (int, error) {
	bp := txPool.get()
	fw := frameWriter{w: w}
	b := binary.AppendUvarint((*bp)[:0], uint64(size))
	want := len(b) + size
	b = m.appendTo(b, v0, &fw)
	fw.write(b)
	// *bp still has the pool's array and capacity: if an append in
	// appendTo outgrew it, b moved to a new array and the old one is free.
	txPool.put(bp)
	if fw.err == nil && fw.n != want {
		return fw.n, fmt.Errorf("protocol: encoded %d frame bytes, expected %d", fw.n, want)
	}
	return fw.n, fw.err
}

// frameWriter writes the pieces of one frame (writeFrame). A nil
// *frameWriter makes appendTo append everything to its buffer.
type frameWriter struct {
	w   io.Writer
	n   int   // bytes written
	err error // the first failed Write; later pieces are not written
}

func (fw *frameWriter) write(p []byte) {
	if fw.err != nil || len(p) == 0 {
		return
	}
	k, err := fw.w.Write(p)
	fw.n += k
	if err == nil && k < len(p) {
		err = io.ErrShortWrite
	}
	fw.err = err
}

// spill writes b once it holds half a send buffer, so that appending one
// more wantlist entry, presence or small block (each under half a
// buffer) never outgrows it, and returns b emptied; with no writer it
// returns b as it is.
func (fw *frameWriter) spill(b []byte) []byte {
	if fw == nil || len(b) < txBufSize/2 {
		return b
	}
	fw.write(b)
	return b[:0]
}

// appendBytes appends a length-delimited field's length and data (its tag
// is already in b): data of txDirect bytes or more is written from where
// it lies, after what b holds, when there is a writer.
func (fw *frameWriter) appendBytes(b, data []byte) []byte {
	if fw == nil || len(data) < txDirect {
		return fw.spill(protowire.AppendBytes(b, data))
	}
	b = protowire.AppendVarint(b, uint64(len(data)))
	fw.write(b)
	fw.write(data)
	return b[:0]
}
