package protocol

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"
)

// Size limits of the wire format. Both match what boxo (Kubo) enforces, so a
// message we accept is one an IPFS peer could have sent, and one we send is
// one an IPFS peer accepts.
const (
	// MaxMessageSize bounds one encoded message (without its length prefix).
	MaxMessageSize = 4 << 20
	// MaxBlockSize bounds the data of one block inside a message.
	MaxBlockSize = 2 << 20
)

// Errors returned by the decoder and the stream reader/writer.
var (
	// ErrMessageTooLarge: an encoded message exceeds MaxMessageSize.
	ErrMessageTooLarge = errors.New("protocol: bitswap message too large")
	// ErrBlockTooLarge: a block in a message exceeds MaxBlockSize.
	ErrBlockTooLarge = errors.New("protocol: block too large")
	// ErrMalformedMessage: the bytes are not a valid Bitswap message.
	ErrMalformedMessage = errors.New("protocol: malformed bitswap message")
)

// WantType says what the requester wants for a CID.
type WantType int32

// Want types (Message.Wantlist.WantType on the wire).
const (
	WantBlock WantType = 0 // send the block
	WantHave  WantType = 1 // say whether you have the block
)

func (t WantType) String() string {
	switch t {
	case WantBlock:
		return "want-block"
	case WantHave:
		return "want-have"
	}
	return fmt.Sprintf("want-type(%d)", int32(t))
}

// Entry is one wantlist entry: a want or, with Cancel, the withdrawal of one.
type Entry struct {
	CID          cid.Cid
	Priority     int32
	Cancel       bool
	WantType     WantType
	SendDontHave bool
}

// PresenceType answers a want-have (or a want-block with SendDontHave).
type PresenceType int32

// Presence types (Message.BlockPresenceType on the wire).
const (
	Have     PresenceType = 0
	DontHave PresenceType = 1
)

func (t PresenceType) String() string {
	switch t {
	case Have:
		return "HAVE"
	case DontHave:
		return "DONT_HAVE"
	}
	return fmt.Sprintf("presence(%d)", int32(t))
}

// Presence tells the requester whether the sender has a block.
type Presence struct {
	CID  cid.Cid
	Type PresenceType
}

// Block is a block carried by a message. After DecodeMessage, CID is always
// computed from the data (prefix + hash), so CID and Data always agree; the
// receiver still has to check that it asked for that CID.
//
// Who owns Data: a Block in a message handed to a Receiver by the Network
// points into the Network's pooled frame buffer, valid only until
// ReceiveMessage returns (see Receiver). A Block given to Send is only read,
// and not after Send returns.
type Block struct {
	CID  cid.Cid
	Data []byte

	// hashed records that the decoder derived CID from Data itself, so the
	// client need not hash the block again; a Block built any other way
	// (by a caller, a test) is hashed before it is trusted.
	hashed bool
}

// blockHashes counts the blocks this package has hashed (decoding and
// verifying), so a test can check that a block from the wire is hashed
// once. One atomic add per block costs nothing beside hashing it.
var blockHashes atomic.Uint64

// sumBlock is the CID of data under prefix p; every block hash of this
// package goes through it.
func sumBlock(p cid.Prefix, data []byte) (cid.Cid, error) {
	blockHashes.Add(1)
	return p.Sum(data)
}

// Message is one Bitswap 1.2.0 message. A single message may carry wants,
// blocks and presences at once.
type Message struct {
	// Full says Wants replaces the sender's whole wantlist.
	Full         bool
	Wants        []Entry
	Blocks       []Block
	Presences    []Presence
	PendingBytes int32
}

// Field numbers of message.proto (package ipfs.boxo.bitswap.message.v1.pb).
const (
	fMsgWantlist     = 1 // Wantlist
	fMsgBlocks       = 2 // repeated bytes, Bitswap 1.0.0 blocks (CIDv0)
	fMsgPayload      = 3 // repeated Block{prefix, data}
	fMsgPresences    = 4 // repeated BlockPresence
	fMsgPendingBytes = 5 // int32

	fWantlistEntries = 1
	fWantlistFull    = 2

	fEntryBlock        = 1 // CID bytes
	fEntryPriority     = 2
	fEntryCancel       = 3
	fEntryWantType     = 4
	fEntrySendDontHave = 5

	fBlockPrefix = 1
	fBlockData   = 2

	fPresenceCID  = 1
	fPresenceType = 2
)

// Empty reports whether the message carries nothing at all.
func (m *Message) Empty() bool {
	return !m.Full && len(m.Wants) == 0 && len(m.Blocks) == 0 &&
		len(m.Presences) == 0 && m.PendingBytes == 0
}

// Marshal encodes the message in the Bitswap 1.1.0/1.2.0 protobuf form
// (blocks as payload{prefix,data}), without a length prefix.
func (m *Message) Marshal() []byte {
	return m.appendTo(make([]byte, 0, m.Size()), false, nil)
}

// marshalV0 encodes for Bitswap 1.0.0 peers: blocks as raw bytes in the
// `blocks` field, and no presences or pendingBytes (1.0.0 has neither).
func (m *Message) marshalV0() []byte {
	return m.appendTo(make([]byte, 0, m.sizeV0()), true, nil)
}

func (m *Message) sizeV0() int {
	n := protowire.SizeTag(fMsgWantlist) + protowire.SizeBytes(m.wantlistSize())
	for i := range m.Blocks {
		n += protowire.SizeTag(fMsgBlocks) + protowire.SizeBytes(len(m.Blocks[i].Data))
	}
	return n
}

// Size is the exact length of Marshal's output.
func (m *Message) Size() int {
	n := protowire.SizeTag(fMsgWantlist) + protowire.SizeBytes(m.wantlistSize())
	for i := range m.Blocks {
		n += protowire.SizeTag(fMsgPayload) + protowire.SizeBytes(blockSize(&m.Blocks[i]))
	}
	for i := range m.Presences {
		n += protowire.SizeTag(fMsgPresences) + protowire.SizeBytes(presenceSize(&m.Presences[i]))
	}
	if m.PendingBytes != 0 {
		n += protowire.SizeTag(fMsgPendingBytes) + protowire.SizeVarint(int32ToWire(m.PendingBytes))
	}
	return n
}

// BlockWireSize is how many bytes a block adds to an encoded message; use it
// to pack blocks into messages that stay under a budget.
func BlockWireSize(b Block) int {
	return protowire.SizeTag(fMsgPayload) + protowire.SizeBytes(blockSize(&b))
}

// blockWireSizeN is BlockWireSize for a block of n bytes with CID c.
func blockWireSizeN(c cid.Cid, n int) int {
	inner := protowire.SizeTag(fBlockPrefix) + protowire.SizeBytes(len(c.Prefix().Bytes()))
	if n > 0 {
		inner += protowire.SizeTag(fBlockData) + protowire.SizeBytes(n)
	}
	return protowire.SizeTag(fMsgPayload) + protowire.SizeBytes(inner)
}

// EntryWireSize is how many bytes a wantlist entry adds to an encoded message.
func EntryWireSize(e Entry) int {
	return protowire.SizeTag(fWantlistEntries) + protowire.SizeBytes(entrySize(&e))
}

// PresenceWireSize is how many bytes a presence adds to an encoded message.
func PresenceWireSize(p Presence) int {
	return protowire.SizeTag(fMsgPresences) + protowire.SizeBytes(presenceSize(&p))
}

// int32ToWire is protobuf's int32 encoding: sign-extended to 64 bits.
func int32ToWire(v int32) uint64 { return uint64(int64(v)) }

func (m *Message) wantlistSize() int {
	n := 0
	for i := range m.Wants {
		n += protowire.SizeTag(fWantlistEntries) + protowire.SizeBytes(entrySize(&m.Wants[i]))
	}
	if m.Full {
		n += protowire.SizeTag(fWantlistFull) + 1
	}
	return n
}

func entrySize(e *Entry) int {
	n := 0
	if e.CID.Defined() {
		n += protowire.SizeTag(fEntryBlock) + protowire.SizeBytes(e.CID.ByteLen())
	}
	if e.Priority != 0 {
		n += protowire.SizeTag(fEntryPriority) + protowire.SizeVarint(int32ToWire(e.Priority))
	}
	if e.Cancel {
		n += protowire.SizeTag(fEntryCancel) + 1
	}
	if e.WantType != 0 {
		n += protowire.SizeTag(fEntryWantType) + protowire.SizeVarint(int32ToWire(int32(e.WantType)))
	}
	if e.SendDontHave {
		n += protowire.SizeTag(fEntrySendDontHave) + 1
	}
	return n
}

func blockSize(b *Block) int {
	n := 0
	if b.CID.Defined() {
		n += protowire.SizeTag(fBlockPrefix) + protowire.SizeBytes(len(b.CID.Prefix().Bytes()))
	}
	if len(b.Data) > 0 {
		n += protowire.SizeTag(fBlockData) + protowire.SizeBytes(len(b.Data))
	}
	return n
}

func presenceSize(p *Presence) int {
	n := 0
	if p.CID.Defined() {
		n += protowire.SizeTag(fPresenceCID) + protowire.SizeBytes(p.CID.ByteLen())
	}
	if p.Type != 0 {
		n += protowire.SizeTag(fPresenceType) + protowire.SizeVarint(int32ToWire(int32(p.Type)))
	}
	return n
}

// appendTo encodes m. Like boxo, the wantlist is always present (possibly
// empty), so the bytes match what an IPFS peer sends for the same message.
// With fw non-nil the encoding goes out through fw in pieces (writeFrame)
// and appendTo returns the last piece, which the caller writes.
func (m *Message) appendTo(b []byte, v0 bool, fw *frameWriter) []byte {
	b = protowire.AppendTag(b, fMsgWantlist, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(m.wantlistSize()))
	for i := range m.Wants {
		e := &m.Wants[i]
		b = protowire.AppendTag(b, fWantlistEntries, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(e)))
		b = fw.spill(appendEntry(b, e))
	}
	if m.Full {
		b = protowire.AppendTag(b, fWantlistFull, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if v0 {
		for i := range m.Blocks {
			b = protowire.AppendTag(b, fMsgBlocks, protowire.BytesType)
			b = fw.appendBytes(b, m.Blocks[i].Data)
		}
		return b
	}
	for i := range m.Blocks {
		blk := &m.Blocks[i]
		b = protowire.AppendTag(b, fMsgPayload, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(blockSize(blk)))
		if blk.CID.Defined() {
			b = protowire.AppendTag(b, fBlockPrefix, protowire.BytesType)
			b = protowire.AppendBytes(b, blk.CID.Prefix().Bytes())
		}
		if len(blk.Data) > 0 {
			b = protowire.AppendTag(b, fBlockData, protowire.BytesType)
			b = fw.appendBytes(b, blk.Data)
		}
		b = fw.spill(b)
	}
	for i := range m.Presences {
		p := &m.Presences[i]
		b = protowire.AppendTag(b, fMsgPresences, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(presenceSize(p)))
		if p.CID.Defined() {
			b = protowire.AppendTag(b, fPresenceCID, protowire.BytesType)
			b = protowire.AppendBytes(b, p.CID.Bytes())
		}
		if p.Type != 0 {
			b = protowire.AppendTag(b, fPresenceType, protowire.VarintType)
			b = protowire.AppendVarint(b, int32ToWire(int32(p.Type)))
		}
		b = fw.spill(b)
	}
	if m.PendingBytes != 0 {
		b = protowire.AppendTag(b, fMsgPendingBytes, protowire.VarintType)
		b = protowire.AppendVarint(b, int32ToWire(m.PendingBytes))
	}
	return b
}

func appendEntry(b []byte, e *Entry) []byte {
	if e.CID.Defined() {
		b = protowire.AppendTag(b, fEntryBlock, protowire.BytesType)
		b = protowire.AppendBytes(b, e.CID.Bytes())
	}
	if e.Priority != 0 {
		b = protowire.AppendTag(b, fEntryPriority, protowire.VarintType)
		b = protowire.AppendVarint(b, int32ToWire(e.Priority))
	}
	if e.Cancel {
		b = protowire.AppendTag(b, fEntryCancel, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if e.WantType != 0 {
		b = protowire.AppendTag(b, fEntryWantType, protowire.VarintType)
		b = protowire.AppendVarint(b, int32ToWire(int32(e.WantType)))
	}
	if e.SendDontHave {
		b = protowire.AppendTag(b, fEntrySendDontHave, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// blockFromV0 turns a Bitswap 1.0.0 block (raw bytes) into a Block; 1.0.0
// only knew CIDv0, i.e. sha2-256 dag-pb.
func blockFromV0(data []byte) (Block, error) {
	if len(data) > MaxBlockSize {
		return Block{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBlockTooLarge, len(data), MaxBlockSize)
	}
	c, err := sumBlock(cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}, data)
	if err != nil {
		return Block{}, fmt.Errorf("%w: hashing 1.0.0 block: %v", ErrMalformedMessage, err)
	}
	return Block{CID: c, Data: data, hashed: true}, nil
}
