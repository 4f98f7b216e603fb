package content

import (
	"cmp"
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spaolacci/murmur3"
)

// UnixFS HAMT directories, as Kubo (boxo ipld/unixfs/hamt) writes them.
//
// Each entry name is hashed with the first 64 bits of murmur3-x64-128
// (seed 0). A shard of fanout 2^w consumes the next w bits of that hash,
// most significant first, as a slot index. A slot holding one entry is a
// link named hex(index)+name; a slot where several entries collide is a
// link named hex(index) to a sub-shard that consumes the next w bits. The
// hex index is uppercase and zero-padded to the width of hex(fanout-1).
// The shard's UnixFS Data is {Type: HAMTShard, Data: bitfield, HashType:
// murmur3 (0x22), Fanout}, where the bitfield has bit i set when slot i
// is used, stored big-endian (slot 0 is the lowest bit of the last byte)
// with leading zero bytes trimmed. Links appear in slot order. The
// structure depends only on the set of entries, not on insertion order.

const (
	hamtFanout       = 256  // shard width written by the unixfs-v1-2025 profile
	hamtFanoutBits   = 8    // log2(hamtFanout)
	hashMurmur3      = 0x22 // multicodec of murmur3-x64-64
	hamtMaxFanout    = 1024 // widest shard read, as boxo allows
	hamtMinFanout    = 8    // narrowest shard read: the bitfield needs whole bytes
	hamtHashBits     = 64   // bits of hash available: depth is bounded by 64/w
	hamtLinkNamesMax = 3    // hex digits of hamtMaxFanout-1
)

// hamtHash is the hash that places a name in a HAMT.
func hamtHash(name string) uint64 {
	return murmur3.Sum64([]byte(name))
}

// hamtIndex returns w bits of h starting consumed bits from the top.
func hamtIndex(h uint64, consumed, w int) int {
	return int((h << uint(consumed)) >> uint(hamtHashBits-w))
}

const hexUpper = "0123456789ABCDEF"

// hamtPrefix is the link name prefix of slot idx: uppercase hex padded to
// padLen digits.
func hamtPrefix(idx, padLen int) string {
	var b [hamtLinkNamesMax]byte
	for i := padLen - 1; i >= 0; i-- {
		b[i] = hexUpper[idx&0xf]
		idx >>= 4
	}
	return string(b[:padLen])
}

// hamtPadLen is the number of hex digits of fanout-1.
func hamtPadLen(fanout int) int {
	return (bits.Len(uint(fanout-1)) + 3) / 4
}

type hamtEntry struct {
	link dirLink
	hash uint64
}

// buildHAMT writes links as a HAMT directory of fanout 256 and returns the
// root shard's CID and cumulative size.
func buildHAMT(ctx context.Context, links []dirLink, sink *blockSink) (cid.Cid, uint64, error) {
	entries := make([]hamtEntry, len(links))
	for i, l := range links {
		entries[i] = hamtEntry{link: l, hash: hamtHash(l.name)}
	}
	slices.SortFunc(entries, func(a, b hamtEntry) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return strings.Compare(a.link.name, b.link.name)
	})
	return buildShard(ctx, entries, 0, sink)
}

// buildShard writes one shard holding entries (sorted by hash, all sharing
// their first consumed bits) and, first, its sub-shards.
func buildShard(ctx context.Context, entries []hamtEntry, consumed int, sink *blockSink) (cid.Cid, uint64, error) {
	if consumed+hamtFanoutBits > hamtHashBits {
		return cid.Undef, 0, fmt.Errorf("content: cannot shard directory: names %q and %q have the same 64-bit murmur3 hash; rename one of them",
			entries[0].link.name, entries[1].link.name)
	}
	var bitfield [hamtFanout / 8]byte
	links := make([]dirLink, 0, min(len(entries), hamtFanout))
	for i := 0; i < len(entries); {
		idx := hamtIndex(entries[i].hash, consumed, hamtFanoutBits)
		j := i + 1
		for j < len(entries) && hamtIndex(entries[j].hash, consumed, hamtFanoutBits) == idx {
			j++
		}
		prefix := hamtPrefix(idx, 2)
		if j-i == 1 {
			l := entries[i].link
			links = append(links, dirLink{name: prefix + l.name, c: l.c, tsize: l.tsize})
		} else {
			c, tsize, err := buildShard(ctx, entries[i:j], consumed+hamtFanoutBits, sink)
			if err != nil {
				return cid.Undef, 0, err
			}
			links = append(links, dirLink{name: prefix, c: c, tsize: tsize})
		}
		bitfield[len(bitfield)-1-idx/8] |= 1 << (idx % 8)
		i = j
	}
	bf := bitfield[:]
	for len(bf) > 0 && bf[0] == 0 {
		bf = bf[1:]
	}
	data := FSData{
		Type:     THAMTShard,
		Data:     bf,
		HashType: hashMurmur3, HasHashType: true,
		Fanout: hamtFanout, HasFanout: true,
	}
	return encodeLinksNode(ctx, links, data.Marshal(), sink)
}

// hamtShard is a decoded, validated HAMT shard.
type hamtShard struct {
	bits   int   // log2(fanout): hash bits consumed by this shard
	padLen int   // hex digits of the slot prefix in link names
	slots  []int // slot index of each link, ascending
	links  []PBLink
}

// decodeHAMTShard validates a shard block: a supported fanout and hash,
// a bitfield with exactly one set bit per link, and link names that carry
// the hex prefix of their slot, in slot order.
func decodeHAMTShard(c cid.Cid, n *PBNode, d *FSData) (*hamtShard, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: HAMT shard %s: %s", ErrMalformed, c, fmt.Sprintf(format, a...))
	}
	if !d.HasHashType || d.HashType != hashMurmur3 {
		return nil, bad("hash type %#x, want murmur3 (0x22)", d.HashType)
	}
	if !d.HasFanout || d.Fanout < hamtMinFanout || d.Fanout > hamtMaxFanout || d.Fanout&(d.Fanout-1) != 0 {
		return nil, bad("fanout %d is not a power of two between %d and %d", d.Fanout, hamtMinFanout, hamtMaxFanout)
	}
	fanout := int(d.Fanout)
	bf := d.Data
	if len(bf) > fanout/8 {
		return nil, bad("bitfield of %d bytes is wider than fanout %d", len(bf), fanout)
	}
	s := &hamtShard{bits: bits.TrailingZeros(uint(fanout)), padLen: hamtPadLen(fanout), links: n.Links}
	for i := range len(bf) * 8 {
		if bf[len(bf)-1-i/8]&(1<<(i%8)) != 0 {
			s.slots = append(s.slots, i)
		}
	}
	if len(s.slots) != len(n.Links) {
		return nil, bad("bitfield has %d slots set but the node has %d links", len(s.slots), len(n.Links))
	}
	for i, l := range n.Links {
		if len(l.Name) < s.padLen || l.Name[:s.padLen] != hamtPrefix(s.slots[i], s.padLen) {
			return nil, bad("link %d named %q is not in slot %s", i, l.Name, hamtPrefix(s.slots[i], s.padLen))
		}
	}
	return s, nil
}

// isShard reports whether link i of the shard points to a sub-shard (its
// name is only the slot prefix) rather than to an entry.
func (s *hamtShard) isShard(i int) bool {
	return len(s.links[i].Name) == s.padLen
}

// entryName is the directory entry name of link i (an entry link).
func (s *hamtShard) entryName(i int) string {
	return s.links[i].Name[s.padLen:]
}

// find returns the link index for a name whose hash, after consumed bits,
// selects a slot of this shard; ok is false when the slot is empty.
func (s *hamtShard) find(h uint64, consumed int) (i int, ok bool) {
	idx := hamtIndex(h, consumed, s.bits)
	i, ok = slices.BinarySearch(s.slots, idx)
	return i, ok
}
