package swarm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Version is the message format version this package writes. A message of
// another version is refused.
const Version = 1

// Limits of one message. A frame over MaxMessageSize is refused before it
// is read; the other limits bound what a decoded message can make the
// receiver allocate.
const (
	MaxMessageSize = 1 << 20
	MaxSegments    = 4096    // map segments per message
	MaxSegmentBits = 8 << 10 // bitfield bytes per segment (65536 links)
	MaxCIDs        = 8192    // CIDs per HAVE message
	MaxPeers       = 64      // peers per exchange message
	MaxAddrs       = 16      // addresses per exchanged peer
	maxCIDLen      = 128
	maxFieldLen    = 1024 // a peer ID or a multiaddr
)

// Kind says what a message is.
type Kind uint8

// The message kinds.
const (
	// KindMap: what the sender holds of Root (Complete, or Segments), and
	// whether it fetches Root (Interested). Ask: the sender wants the
	// receiver's map of Root in return.
	KindMap Kind = 1
	// KindHave: blocks of Root the sender verified since its map.
	KindHave Kind = 2
	// KindInterest: the sender starts or stops fetching Root.
	KindInterest Kind = 3
	// KindChoke: the sender chokes (serves none of the receiver's wants)
	// or unchokes the receiver. It covers every root.
	KindChoke Kind = 4
	// KindPeers: peer exchange — peers fetching or holding Root, with
	// their addresses.
	KindPeers Kind = 5
	// KindWant: the sender is (Interested) or is no longer interested in
	// the receiver for Root — BitTorrent's interest: the receiver holds a
	// block of Root the sender still needs. Only a sender whose maps say
	// SaysWant sends it; a receiver of version 1 without it skips the
	// kind (unknown kinds are skipped) and goes on reading KindInterest
	// as interest.
	KindWant Kind = 6
)

func (k Kind) String() string {
	switch k {
	case KindMap:
		return "map"
	case KindHave:
		return "have"
	case KindInterest:
		return "interest"
	case KindChoke:
		return "choke"
	case KindPeers:
		return "peers"
	case KindWant:
		return "want"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Segment is one interior block's part of a map: the sender holds Parent,
// and the block of Parent's i-th link when bit i of Bits is set (byte
// i/8, mask 1<<(i%8)).
type Segment struct {
	Parent cid.Cid
	Bits   []byte
}

// Has reports whether bit i is set: the sender holds Parent's i-th link.
func (s Segment) Has(i int) bool {
	return i >= 0 && i/8 < len(s.Bits) && s.Bits[i/8]&(1<<(i%8)) != 0
}

// Message is one swarm message. Which fields count depends on Kind.
type Message struct {
	Kind Kind
	Root cid.Cid // every kind but KindChoke

	Complete   bool // map
	Interested bool // map, interest
	Ask        bool // map
	// SaysWant (map): the sender tells its interest in the receiver with
	// KindWant messages; until one says Interested, it wants nothing the
	// receiver holds, whatever Interested says of its fetch.
	SaysWant bool
	Segments []Segment

	CIDs []cid.Cid // have

	Choked bool // choke

	Peers []peer.AddrInfo // peers
}

// Errors of the decoder.
var (
	// ErrMalformed: the bytes are not a message of this format.
	ErrMalformed = errors.New("swarm: malformed message")
	// ErrTooLarge: a frame or a field exceeds a limit.
	ErrTooLarge = errors.New("swarm: message exceeds a limit")
	// ErrUnknownKind: a well-framed message of a kind this version does
	// not know; the reader skips it.
	ErrUnknownKind = errors.New("swarm: unknown message kind")
)

const (
	flagComplete = 1 << iota
	flagInterested
	flagAsk
	flagSaysWant
)

// Encode appends m's body (without the frame length) to b.
func (m *Message) Encode(b []byte) []byte {
	b = append(b, Version, byte(m.Kind))
	if m.Kind != KindChoke {
		b = appendCID(b, m.Root)
	}
	switch m.Kind {
	case KindMap:
		var f byte
		if m.Complete {
			f |= flagComplete
		}
		if m.Interested {
			f |= flagInterested
		}
		if m.Ask {
			f |= flagAsk
		}
		if m.SaysWant {
			f |= flagSaysWant
		}
		b = append(b, f)
		b = binary.AppendUvarint(b, uint64(len(m.Segments)))
		for _, s := range m.Segments {
			b = appendCID(b, s.Parent)
			b = appendBytes(b, s.Bits)
		}
	case KindHave:
		b = binary.AppendUvarint(b, uint64(len(m.CIDs)))
		for _, c := range m.CIDs {
			b = appendCID(b, c)
		}
	case KindInterest, KindWant:
		b = append(b, boolByte(m.Interested))
	case KindChoke:
		b = append(b, boolByte(m.Choked))
	case KindPeers:
		b = binary.AppendUvarint(b, uint64(len(m.Peers)))
		for _, ai := range m.Peers {
			b = appendBytes(b, []byte(ai.ID))
			b = binary.AppendUvarint(b, uint64(len(ai.Addrs)))
			for _, a := range ai.Addrs {
				b = appendBytes(b, a.Bytes())
			}
		}
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendCID(b []byte, c cid.Cid) []byte { return appendBytes(b, c.Bytes()) }

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads fields from one message body.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(ErrMalformed, "bad %s length", what)
		return 0
	}
	d.b = d.b[n:]
	if v > limit {
		d.fail(ErrTooLarge, "%s %d > %d", what, v, limit)
		return 0
	}
	return v
}

func (d *decoder) byte1(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(ErrMalformed, "%s missing", what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes(what string, limit uint64) []byte {
	n := d.uvarint(what, limit)
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.fail(ErrMalformed, "%s truncated", what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) cid(what string) cid.Cid {
	raw := d.bytes(what, maxCIDLen)
	if d.err != nil {
		return cid.Undef
	}
	c, err := cid.Cast(raw)
	if err != nil {
		d.fail(ErrMalformed, "%s: %v", what, err)
		return cid.Undef
	}
	return c
}

func (d *decoder) flag(what string) bool {
	v := d.byte1(what)
	if v > 1 {
		d.fail(ErrMalformed, "%s is %d, not 0 or 1", what, v)
	}
	return v == 1
}

// Decode parses one message body (as Encode writes it). The message does
// not alias body.
func Decode(body []byte) (*Message, error) {
	d := &decoder{b: body}
	if v := d.byte1("version"); d.err == nil && v != Version {
		return nil, fmt.Errorf("%w: version %d, this node speaks %d", ErrMalformed, v, Version)
	}
	m := &Message{Kind: Kind(d.byte1("kind"))}
	if d.err != nil {
		return nil, d.err
	}
	if m.Kind < KindMap || m.Kind > KindWant {
		return nil, fmt.Errorf("%w %d", ErrUnknownKind, uint8(m.Kind))
	}
	if m.Kind != KindChoke {
		m.Root = d.cid("root")
	}
	switch m.Kind {
	case KindMap:
		f := d.byte1("flags")
		m.Complete, m.Interested, m.Ask, m.SaysWant = f&flagComplete != 0, f&flagInterested != 0, f&flagAsk != 0, f&flagSaysWant != 0
		n := d.uvarint("segment count", MaxSegments)
		for i := uint64(0); i < n && d.err == nil; i++ {
			s := Segment{Parent: d.cid("segment parent")}
			s.Bits = append([]byte(nil), d.bytes("segment bits", MaxSegmentBits)...)
			m.Segments = append(m.Segments, s)
		}
	case KindHave:
		n := d.uvarint("CID count", MaxCIDs)
		for i := uint64(0); i < n && d.err == nil; i++ {
			m.CIDs = append(m.CIDs, d.cid("have CID"))
		}
	case KindInterest, KindWant:
		m.Interested = d.flag("interested")
	case KindChoke:
		m.Choked = d.flag("choked")
	case KindPeers:
		m.Peers = d.peers()
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the %s message", ErrMalformed, len(d.b), m.Kind)
	}
	return m, nil
}

func (d *decoder) peers() []peer.AddrInfo {
	n := d.uvarint("peer count", MaxPeers)
	var out []peer.AddrInfo
	for i := uint64(0); i < n && d.err == nil; i++ {
		id, err := peer.IDFromBytes(d.bytes("peer ID", maxFieldLen))
		if d.err != nil {
			break
		}
		if err != nil {
			d.fail(ErrMalformed, "peer ID: %v", err)
			break
		}
		ai := peer.AddrInfo{ID: id}
		na := d.uvarint("address count", MaxAddrs)
		for j := uint64(0); j < na && d.err == nil; j++ {
			raw := d.bytes("address", maxFieldLen)
			if d.err != nil {
				break
			}
			a, err := ma.NewMultiaddrBytes(raw)
			if err != nil {
				d.fail(ErrMalformed, "address of %s: %v", id, err)
				break
			}
			ai.Addrs = append(ai.Addrs, a)
		}
		out = append(out, ai)
	}
	return out
}

// WriteMessage writes m as one length-prefixed frame.
func WriteMessage(w io.Writer, m *Message) error {
	return writeFrame(w, m.Encode(nil))
}

func writeFrame(w io.Writer, body []byte) error {
	if len(body) > MaxMessageSize {
		return fmt.Errorf("%w: message of %d bytes", ErrTooLarge, len(body))
	}
	frame := binary.AppendUvarint(make([]byte, 0, len(body)+binary.MaxVarintLen32), uint64(len(body)))
	_, err := w.Write(append(frame, body...))
	return err
}

// ReadMessage reads one frame and decodes it. A frame of an unknown kind
// is consumed and reported with ErrUnknownKind, so the caller may go on
// reading; any other error leaves the stream unusable.
func ReadMessage(r *bufio.Reader) (*Message, error) {
	body, err := readFrame(r)
	if err != nil {
		return nil, err
	}
	return Decode(body)
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: frame length: %v", ErrMalformed, err)
	}
	if n > MaxMessageSize {
		return nil, fmt.Errorf("%w: frame of %d bytes (limit %d)", ErrTooLarge, n, MaxMessageSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: frame truncated: %v", ErrMalformed, err)
	}
	return body, nil
}
