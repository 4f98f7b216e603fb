package web

import (
	"context"
	"encoding/binary"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
)

// CAR v1 (https://ipld.io/specs/transport/car/carv1/) is written here
// directly: go-car could not be added (its module graph asks the proxy for
// a kad-dht version list, which this build's proxy refuses), and the
// format is a varint-framed sequence after a tiny dag-cbor header.

// carHeader encodes the CAR v1 header {"roots": [root], "version": 1} in
// canonical dag-cbor (keys ordered by length, then bytes), length-prefixed.
func carHeader(root cid.Cid) []byte {
	cb := append([]byte{0}, root.Bytes()...) // CID in CBOR: tag 42 over 0x00 ‖ binary CID
	h := []byte{0xa2, 0x65, 'r', 'o', 'o', 't', 's', 0x81, 0xd8, 0x2a}
	h = appendCBORBytesHead(h, len(cb))
	h = append(h, cb...)
	h = append(h, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01)
	return append(binary.AppendUvarint(nil, uint64(len(h))), h...)
}

// appendCBORBytesHead appends the head of a CBOR byte string of length n.
func appendCBORBytesHead(b []byte, n int) []byte {
	switch {
	case n < 24:
		return append(b, 0x40|byte(n))
	case n < 1<<8:
		return append(b, 0x58, byte(n))
	default:
		return append(b, 0x59, byte(n>>8), byte(n))
	}
}

// blockGetter adapts a Node to content.BlockGetter.
type blockGetter struct{ n Node }

func (g blockGetter) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return g.n.Block(ctx, c) }

// writeCAR streams the DAG under root as CAR v1: depth-first, each block
// before its children, each block once.
func writeCAR(ctx context.Context, w io.Writer, n Node, root cid.Cid) error {
	if _, err := w.Write(carHeader(root)); err != nil {
		return err
	}
	seen := map[cid.Cid]bool{}
	var frame []byte
	return content.Walk(ctx, blockGetter{n}, root, func(c cid.Cid, data []byte) error {
		if seen[c] {
			return nil
		}
		seen[c] = true
		cb := c.Bytes()
		frame = binary.AppendUvarint(frame[:0], uint64(len(cb)+len(data)))
		frame = append(frame, cb...)
		if _, err := w.Write(frame); err != nil {
			return err
		}
		_, err := w.Write(data)
		return err
	})
}
