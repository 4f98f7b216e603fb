package content

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// Links returns the CIDs a block links to, in order: none for a raw block,
// the link hashes of a dag-pb node (files, directories and HAMT shards
// alike). Other codecs give ErrUnsupportedCodec; undecodable dag-pb gives
// ErrMalformed. data is not retained.
func Links(c cid.Cid, data []byte) ([]cid.Cid, error) {
	switch c.Type() {
	case cid.Raw:
		return nil, nil
	case cid.DagProtobuf:
		n, err := decodePBNode(data, false)
		if err != nil {
			return nil, fmt.Errorf("content: links of %s: %w", c, err)
		}
		if len(n.Links) == 0 {
			return nil, nil
		}
		out := make([]cid.Cid, len(n.Links))
		for i := range n.Links {
			out[i] = n.Links[i].Hash
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s has codec 0x%x; shoal follows links of raw (0x55) and dag-pb (0x70) blocks only",
		ErrUnsupportedCodec, c, c.Type())
}
