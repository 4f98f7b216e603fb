package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// readChunk is how much ReadMessage allocates ahead of the data that has
// actually arrived, and the buffer then grows fourfold as data arrives: a
// peer that announces a 4 MiB message and trickles bytes makes us hold at
// most four times what it sent (plus one chunk), not the announced size,
// while a message up to 1.25 MiB (one 1 MiB block) costs one regrowth.
const readChunk = 256 << 10

// ReadMessage reads one unsigned-varint length-delimited message, the
// framing Bitswap uses on a libp2p stream. A length over MaxMessageSize is
// refused before anything is allocated. At a clean end of stream (no byte of
// a new message) it returns io.EOF. Block data in the result is owned by the
// caller (a fresh buffer per message).
func ReadMessage(r *bufio.Reader) (*Message, error) {
	buf, err := readFrame(r)
	if err != nil {
		return nil, err
	}
	return DecodeMessage(buf)
}

// readFrame reads one length-delimited frame; see ReadMessage.
func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := readLength(r)
	if err != nil {
		return nil, err
	}
	size := int(n)
	buf := make([]byte, 0, min(size, readChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			// Grow straight to four times what arrived plus one chunk, or
			// to the whole frame if that is no more: a frame just over
			// 1 MiB (one 1 MiB block) then costs two buffers, not three
			// with the largest copied twice.
			buf = slices.Grow(buf, min(size, 4*len(buf)+readChunk)-len(buf))
		}
		k, err := r.Read(buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < size {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: stream ended after %d of %d message bytes", ErrMalformedMessage, len(buf), size)
			}
			return nil, err
		}
	}
	return buf, nil
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
