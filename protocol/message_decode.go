package protocol

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
)

// DecodeMessage parses one Bitswap message (1.0.0, 1.1.0 or 1.2.0 form,
// without length prefix). Block data in the result aliases b.
//
// Decoding is strict where strictness costs nothing: a known field with the
// wrong wire type, an entry or presence without a valid CID, a block whose
// prefix cannot hash its data, or a block over MaxBlockSize is an error.
// Unknown fields are skipped, as protobuf requires.
func DecodeMessage(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(b), MaxMessageSize)
	}
	m := &Message{}
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, val []byte, v uint64) error {
		switch num {
		case fMsgWantlist:
			return decodeWantlist(m, val)
		case fMsgBlocks:
			blk, err := blockFromV0(val)
			if err != nil {
				return err
			}
			m.Blocks = append(m.Blocks, blk)
		case fMsgPayload:
			blk, err := decodeBlock(val)
			if err != nil {
				return err
			}
			m.Blocks = append(m.Blocks, blk)
		case fMsgPresences:
			p, err := decodePresence(val)
			if err != nil {
				return err
			}
			m.Presences = append(m.Presences, p)
		case fMsgPendingBytes:
			m.PendingBytes = int32(v)
		}
		return nil
	}, msgFieldTypes)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Expected wire types of known fields, per message kind.
var (
	msgFieldTypes = map[protowire.Number]protowire.Type{
		fMsgWantlist: protowire.BytesType, fMsgBlocks: protowire.BytesType,
		fMsgPayload: protowire.BytesType, fMsgPresences: protowire.BytesType,
		fMsgPendingBytes: protowire.VarintType,
	}
	wantlistFieldTypes = map[protowire.Number]protowire.Type{
		fWantlistEntries: protowire.BytesType, fWantlistFull: protowire.VarintType,
	}
	entryFieldTypes = map[protowire.Number]protowire.Type{
		fEntryBlock: protowire.BytesType, fEntryPriority: protowire.VarintType,
		fEntryCancel: protowire.VarintType, fEntryWantType: protowire.VarintType,
		fEntrySendDontHave: protowire.VarintType,
	}
	blockFieldTypes = map[protowire.Number]protowire.Type{
		fBlockPrefix: protowire.BytesType, fBlockData: protowire.BytesType,
	}
	presenceFieldTypes = map[protowire.Number]protowire.Type{
		fPresenceCID: protowire.BytesType, fPresenceType: protowire.VarintType,
	}
)

// forEachField walks the fields of one protobuf message. For known fields
// (those in types) it checks the wire type and calls fn with the bytes
// (BytesType) or the varint value (VarintType); unknown fields are skipped.
func forEachField(b []byte, fn func(protowire.Number, protowire.Type, []byte, uint64) error,
	types map[protowire.Number]protowire.Type) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag: %v", ErrMalformedMessage, protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			// protowire accepts any tag varint; protobuf (and so boxo)
			// refuses field numbers past 2^29-1.
			return fmt.Errorf("%w: field number %d is out of range", ErrMalformedMessage, num)
		}
		b = b[n:]
		want, known := types[num]
		if !known {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: bad field %d: %v", ErrMalformedMessage, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		if typ != want {
			return fmt.Errorf("%w: field %d has wire type %d, want %d", ErrMalformedMessage, num, typ, want)
		}
		var (
			val []byte
			v   uint64
		)
		switch typ {
		case protowire.BytesType:
			val, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrMalformedMessage, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, val, v); err != nil {
			return err
		}
	}
	return nil
}

// decodeWantlist merges one Wantlist field into m; protobuf merges repeated
// occurrences of an embedded message, so entries accumulate.
func decodeWantlist(m *Message, b []byte) error {
	return forEachField(b, func(num protowire.Number, _ protowire.Type, val []byte, v uint64) error {
		switch num {
		case fWantlistEntries:
			e, err := decodeEntry(val)
			if err != nil {
				return err
			}
			m.Wants = append(m.Wants, e)
		case fWantlistFull:
			m.Full = v != 0
		}
		return nil
	}, wantlistFieldTypes)
}

var errCIDMissing = errors.New("missing CID")

func decodeEntry(b []byte) (Entry, error) {
	var e Entry
	var raw []byte
	err := forEachField(b, func(num protowire.Number, _ protowire.Type, val []byte, v uint64) error {
		switch num {
		case fEntryBlock:
			raw = val
		case fEntryPriority:
			e.Priority = int32(v)
		case fEntryCancel:
			e.Cancel = v != 0
		case fEntryWantType:
			e.WantType = WantType(int32(v))
		case fEntrySendDontHave:
			e.SendDontHave = v != 0
		}
		return nil
	}, entryFieldTypes)
	if err != nil {
		return Entry{}, err
	}
	c, err := castCID(raw)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: wantlist entry: %v", ErrMalformedMessage, err)
	}
	e.CID = c
	return e, nil
}

func decodePresence(b []byte) (Presence, error) {
	var p Presence
	var raw []byte
	err := forEachField(b, func(num protowire.Number, _ protowire.Type, val []byte, v uint64) error {
		switch num {
		case fPresenceCID:
			raw = val
		case fPresenceType:
			p.Type = PresenceType(int32(v))
		}
		return nil
	}, presenceFieldTypes)
	if err != nil {
		return Presence{}, err
	}
	c, err := castCID(raw)
	if err != nil {
		return Presence{}, fmt.Errorf("%w: block presence: %v", ErrMalformedMessage, err)
	}
	p.CID = c
	return p, nil
}

func decodeBlock(b []byte) (Block, error) {
	var prefix, data []byte
	err := forEachField(b, func(num protowire.Number, _ protowire.Type, val []byte, _ uint64) error {
		switch num {
		case fBlockPrefix:
			prefix = val
		case fBlockData:
			data = val
		}
		return nil
	}, blockFieldTypes)
	if err != nil {
		return Block{}, err
	}
	if len(data) > MaxBlockSize {
		return Block{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBlockTooLarge, len(data), MaxBlockSize)
	}
	pref, err := cid.PrefixFromBytes(prefix)
	if err != nil {
		return Block{}, fmt.Errorf("%w: block prefix: %v", ErrMalformedMessage, err)
	}
	c, err := sumBlock(pref, data)
	if err != nil {
		return Block{}, fmt.Errorf("%w: hashing block with prefix %v: %v", ErrMalformedMessage, pref, err)
	}
	if data == nil {
		data = []byte{}
	}
	return Block{CID: c, Data: data, hashed: true}, nil
}

func castCID(raw []byte) (cid.Cid, error) {
	if len(raw) == 0 {
		return cid.Undef, errCIDMissing
	}
	c, err := cid.Cast(raw)
	if err != nil {
		return cid.Undef, err
	}
	if !c.Defined() {
		return cid.Undef, errCIDMissing
	}
	return c, nil
}
