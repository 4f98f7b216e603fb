package content

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is returned (wrapped) when bytes that should hold a dag-pb
// node or UnixFS data cannot be decoded.
var ErrMalformed = errors.New("content: malformed node")

// PBLink is one link of a dag-pb node.
type PBLink struct {
	Hash  cid.Cid
	Name  string
	Tsize uint64 // cumulative size of the linked DAG, as dag-pb defines it
}

// PBNode is a dag-pb node. Links are encoded in the order given; callers
// that build directories sort them first.
type PBNode struct {
	Links []PBLink
	Data  []byte // nil means absent
}

// Marshal encodes the node in canonical dag-pb form: links first, each
// with Hash, Name and Tsize (as Kubo writes them, Name even when empty),
// then Data when present.
func (n *PBNode) Marshal() []byte {
	size := 0
	for i := range n.Links {
		ls := linkSize(&n.Links[i])
		size += protowire.SizeTag(2) + protowire.SizeBytes(ls)
	}
	if n.Data != nil {
		size += protowire.SizeTag(1) + protowire.SizeBytes(len(n.Data))
	}
	b := make([]byte, 0, size)
	for i := range n.Links {
		l := &n.Links[i]
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(linkSize(l)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, l.Hash.Bytes())
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, l.Name)
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, l.Tsize)
	}
	if n.Data != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, n.Data)
	}
	return b
}

func linkSize(l *PBLink) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(l.Hash.ByteLen()) +
		protowire.SizeTag(2) + protowire.SizeBytes(len(l.Name)) +
		protowire.SizeTag(3) + protowire.SizeVarint(l.Tsize)
}

// DecodePBNode decodes a dag-pb node strictly, as the dag-pb spec asks:
// only the known fields, no field repeated where it may not be, links in
// one run. Data may come before the links as well as after: the spec asks
// decoders to accept both orders, go-codec-dagpb (Kubo) does, and IPIP-550
// writers put Data first. Data is copied, so the result does not alias b.
func DecodePBNode(b []byte) (*PBNode, error) {
	return decodePBNode(b, true)
}

// decodePBNode is DecodePBNode; with copyData false the result's Data
// aliases b, which saves a copy when only the links are wanted.
func decodePBNode(b []byte, copyData bool) (*PBNode, error) {
	n := &PBNode{}
	seenData, linksEnded := false, false
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return nil, fmt.Errorf("%w: dag-pb: bad field tag", ErrMalformed)
		}
		b = b[tl:]
		if typ != protowire.BytesType {
			return nil, fmt.Errorf("%w: dag-pb: field %d has wire type %d, want bytes", ErrMalformed, num, typ)
		}
		v, vl := protowire.ConsumeBytes(b)
		if vl < 0 {
			return nil, fmt.Errorf("%w: dag-pb: field %d is truncated", ErrMalformed, num)
		}
		b = b[vl:]
		switch num {
		case 1:
			if seenData {
				return nil, fmt.Errorf("%w: dag-pb: Data appears twice", ErrMalformed)
			}
			seenData = true
			linksEnded = len(n.Links) > 0
			if copyData {
				n.Data = append(make([]byte, 0, len(v)), v...)
			} else {
				n.Data = v[:len(v):len(v)]
			}
		case 2:
			if linksEnded {
				return nil, fmt.Errorf("%w: dag-pb: links before and after Data", ErrMalformed)
			}
			l, err := decodePBLink(v)
			if err != nil {
				return nil, err
			}
			n.Links = append(n.Links, l)
		default:
			return nil, fmt.Errorf("%w: dag-pb: unknown field %d", ErrMalformed, num)
		}
	}
	return n, nil
}

func decodePBLink(b []byte) (PBLink, error) {
	var l PBLink
	last := protowire.Number(0)
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return l, fmt.Errorf("%w: dag-pb link: bad field tag", ErrMalformed)
		}
		if num <= last {
			return l, fmt.Errorf("%w: dag-pb link: field %d out of order or repeated", ErrMalformed, num)
		}
		last = num
		b = b[tl:]
		switch {
		case num == 1 && typ == protowire.BytesType, num == 2 && typ == protowire.BytesType:
			v, vl := protowire.ConsumeBytes(b)
			if vl < 0 {
				return l, fmt.Errorf("%w: dag-pb link: field %d is truncated", ErrMalformed, num)
			}
			b = b[vl:]
			if num == 1 {
				c, err := cid.Cast(v)
				if err != nil {
					return l, fmt.Errorf("%w: dag-pb link: bad CID: %v", ErrMalformed, err)
				}
				l.Hash = c
			} else {
				l.Name = string(v)
			}
		case num == 3 && typ == protowire.VarintType:
			v, vl := protowire.ConsumeVarint(b)
			if vl < 0 {
				return l, fmt.Errorf("%w: dag-pb link: Tsize is truncated", ErrMalformed)
			}
			b = b[vl:]
			l.Tsize = v
		default:
			return l, fmt.Errorf("%w: dag-pb link: unexpected field %d (wire type %d)", ErrMalformed, num, typ)
		}
	}
	if !l.Hash.Defined() {
		return l, fmt.Errorf("%w: dag-pb link: missing Hash", ErrMalformed)
	}
	return l, nil
}
