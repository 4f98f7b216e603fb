package content

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// FSType is the UnixFS node type.
type FSType uint64

// UnixFS node types, as the UnixFS spec numbers them.
const (
	TRaw       FSType = 0
	TDirectory FSType = 1
	TFile      FSType = 2
	TMetadata  FSType = 3
	TSymlink   FSType = 4
	THAMTShard FSType = 5
)

func (t FSType) String() string {
	switch t {
	case TRaw:
		return "raw"
	case TDirectory:
		return "directory"
	case TFile:
		return "file"
	case TMetadata:
		return "metadata"
	case TSymlink:
		return "symlink"
	case THAMTShard:
		return "hamt-shard"
	}
	return fmt.Sprintf("unixfs-type-%d", uint64(t))
}

// FSData is the UnixFS Data message carried in a dag-pb node's Data field.
// Optional scalar fields use Has* flags so that absent and zero differ, as
// they do on the wire (proto2).
type FSData struct {
	Type        FSType
	Data        []byte // nil means absent
	FileSize    uint64
	HasFileSize bool
	BlockSizes  []uint64
	HashType    uint64
	HasHashType bool
	Fanout      uint64
	HasFanout   bool
}

// Marshal encodes the message with fields in number order and blocksizes
// unpacked, as Kubo (proto2) does.
func (d *FSData) Marshal() []byte {
	b := make([]byte, 0, 16+len(d.Data)+len(d.BlockSizes)*5)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(d.Type))
	if d.Data != nil {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, d.Data)
	}
	if d.HasFileSize {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, d.FileSize)
	}
	for _, s := range d.BlockSizes {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, s)
	}
	if d.HasHashType {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, d.HashType)
	}
	if d.HasFanout {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, d.Fanout)
	}
	return b
}

// DecodeFSData decodes UnixFS Data. It accepts blocksizes packed or
// unpacked and skips mode and mtime (fields 7 and 8), which shoal does not
// write; any other unknown field is an error. Data is copied.
func DecodeFSData(b []byte) (*FSData, error) {
	d := &FSData{}
	seenType := false
	for len(b) > 0 {
		num, typ, tl := protowire.ConsumeTag(b)
		if tl < 0 {
			return nil, fmt.Errorf("%w: unixfs: bad field tag", ErrMalformed)
		}
		b = b[tl:]
		switch {
		case typ == protowire.VarintType && (num == 1 || num == 3 || num == 4 || num == 5 || num == 6 || num == 7):
			v, vl := protowire.ConsumeVarint(b)
			if vl < 0 {
				return nil, fmt.Errorf("%w: unixfs: field %d is truncated", ErrMalformed, num)
			}
			b = b[vl:]
			switch num {
			case 1:
				d.Type, seenType = FSType(v), true
			case 3:
				d.FileSize, d.HasFileSize = v, true
			case 4:
				d.BlockSizes = append(d.BlockSizes, v)
			case 5:
				d.HashType, d.HasHashType = v, true
			case 6:
				d.Fanout, d.HasFanout = v, true
			}
		case typ == protowire.BytesType && (num == 2 || num == 4 || num == 8):
			v, vl := protowire.ConsumeBytes(b)
			if vl < 0 {
				return nil, fmt.Errorf("%w: unixfs: field %d is truncated", ErrMalformed, num)
			}
			b = b[vl:]
			switch num {
			case 2:
				d.Data = append(make([]byte, 0, len(v)), v...)
			case 4: // packed blocksizes
				for len(v) > 0 {
					s, sl := protowire.ConsumeVarint(v)
					if sl < 0 {
						return nil, fmt.Errorf("%w: unixfs: packed blocksizes truncated", ErrMalformed)
					}
					v = v[sl:]
					d.BlockSizes = append(d.BlockSizes, s)
				}
			}
		default:
			return nil, fmt.Errorf("%w: unixfs: unexpected field %d (wire type %d)", ErrMalformed, num, typ)
		}
	}
	if !seenType {
		return nil, fmt.Errorf("%w: unixfs: missing Type", ErrMalformed)
	}
	if d.Type > THAMTShard {
		return nil, fmt.Errorf("%w: unixfs: unknown type %d", ErrMalformed, uint64(d.Type))
	}
	return d, nil
}
