package content_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	unixfspb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/shoalnet/shoal/content"
)

func testCID(i int) cid.Cid {
	codec := uint64(cid.Raw)
	if i%2 == 1 {
		codec = cid.DagProtobuf
	}
	c, _ := cid.Prefix{Version: 1, Codec: codec, MhType: 0x12, MhLength: -1}.Sum([]byte(fmt.Sprint(i)))
	if i%5 == 0 {
		c, _ = cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: 0x12, MhLength: -1}.Sum([]byte(fmt.Sprint(i)))
	}
	return c
}

// TestPBNodeMarshalMatchesBoxo encodes random nodes with both codecs:
// links with and without names and sizes, Data absent, empty and set.
func TestPBNodeMarshalMatchesBoxo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	names := []string{"", "", "a", "b", "dir/x", "ü"}
	for i := range 300 {
		var n content.PBNode
		pn := new(mdag.ProtoNode)
		for j := range rng.IntN(6) {
			l := content.PBLink{Hash: testCID(i*7 + j), Name: names[rng.IntN(len(names))]}
			if rng.IntN(2) == 0 {
				l.Tsize = rng.Uint64N(1 << uint(1+rng.IntN(62)))
			}
			n.Links = append(n.Links, l)
		}
		// boxo sorts links by name (stably); give it sorted input so both
		// encode the same list.
		slices.SortStableFunc(n.Links, func(a, b content.PBLink) int { return cmpString(a.Name, b.Name) })
		for _, l := range n.Links {
			if err := pn.AddRawLink(l.Name, &ipld.Link{Cid: l.Hash, Size: l.Tsize}); err != nil {
				t.Fatal(err)
			}
		}
		switch rng.IntN(3) {
		case 1:
			n.Data = []byte{}
			pn.SetData([]byte{})
		case 2:
			n.Data = []byte(fmt.Sprint("data", i))
			pn.SetData(n.Data)
		}
		want, err := pn.EncodeProtobuf(true)
		if err != nil {
			t.Fatal(err)
		}
		got := n.Marshal()
		if !bytes.Equal(got, want) {
			t.Fatalf("node %d: encodings differ\n got %x\nwant %x", i, got, want)
		}
		back, err := content.DecodePBNode(want)
		if err != nil {
			t.Fatal(err)
		}
		if !pbEqual(back, &n) {
			t.Fatalf("node %d: decode of boxo encoding differs", i)
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func pbEqual(a, b *content.PBNode) bool {
	if (a.Data == nil) != (b.Data == nil) || !bytes.Equal(a.Data, b.Data) || len(a.Links) != len(b.Links) {
		return false
	}
	for i := range a.Links {
		x, y := a.Links[i], b.Links[i]
		if !x.Hash.Equals(y.Hash) || x.Name != y.Name || x.Tsize != y.Tsize {
			return false
		}
	}
	return true
}

// TestFSDataMarshalMatchesBoxo compares with boxo's generated protobuf.
func TestFSDataMarshalMatchesBoxo(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range 300 {
		d := content.FSData{Type: content.FSType(rng.IntN(6))}
		typ := unixfspb.Data_DataType(d.Type)
		m := &unixfspb.Data{Type: &typ}
		if rng.IntN(2) == 0 {
			d.Data = bytes.Repeat([]byte{byte(i)}, rng.IntN(4))
			m.Data = d.Data
			if d.Data == nil {
				d.Data = []byte{}
				m.Data = []byte{}
			}
		}
		if rng.IntN(2) == 0 {
			d.FileSize, d.HasFileSize = rng.Uint64(), true
			m.Filesize = &d.FileSize
		}
		for range rng.IntN(4) {
			s := rng.Uint64N(1 << 30)
			d.BlockSizes = append(d.BlockSizes, s)
			m.Blocksizes = append(m.Blocksizes, s)
		}
		if rng.IntN(3) == 0 {
			d.HashType, d.HasHashType = 0x22, true
			m.HashType = &d.HashType
		}
		if rng.IntN(3) == 0 {
			d.Fanout, d.HasFanout = 256, true
			m.Fanout = &d.Fanout
		}
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Marshal(); !bytes.Equal(got, want) {
			t.Fatalf("message %d: encodings differ\n got %x\nwant %x", i, got, want)
		}
		back, err := content.DecodeFSData(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Marshal(), want) {
			t.Fatalf("message %d: decode+marshal differs", i)
		}
	}
}

// TestDecodeFSDataLenient: packed blocksizes, mode and mtime are accepted.
func TestDecodeFSDataLenient(t *testing.T) {
	typ := unixfspb.Data_File
	mode := uint32(0o644)
	m := &unixfspb.Data{Type: &typ, Filesize: new(uint64(7)), Mode: &mode,
		Mtime: &unixfspb.IPFSTimestamp{Seconds: new(int64(1700000000))}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var packed []byte
	packed = protowire.AppendVarint(packed, 3)
	packed = protowire.AppendVarint(packed, 4)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, packed)
	d, err := content.DecodeFSData(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != content.TFile || d.FileSize != 7 || !slices.Equal(d.BlockSizes, []uint64{3, 4}) {
		t.Fatalf("decoded %+v", d)
	}
}

// TestDecodePBNodeDataFirst: IPIP-550 order (Data before Links) decodes to
// the same node, as go-codec-dagpb decodes it.
func TestDecodePBNodeDataFirst(t *testing.T) {
	n := content.PBNode{Links: []content.PBLink{{Hash: testCID(1), Tsize: 3}, {Hash: testCID(2), Name: "x"}}, Data: []byte("d")}
	canon := n.Marshal()
	// Move the trailing Data field (tag, length, 1 byte) to the front.
	dataFirst := append(append([]byte{}, canon[len(canon)-3:]...), canon[:len(canon)-3]...)
	got, err := content.DecodePBNode(dataFirst)
	if err != nil || !pbEqual(got, &n) {
		t.Fatalf("data-first: %+v, %v", got, err)
	}
	if _, err := mdag.DecodeProtobuf(dataFirst); err != nil {
		t.Fatalf("boxo rejects data-first too: %v", err)
	}
}

func TestDecodePBNodeRejects(t *testing.T) {
	link := func(fields ...[]byte) []byte { return bytes.Join(fields, nil) }
	hash := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), testCID(1).Bytes())
	name := protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "n")
	tsize := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 5)
	node := func(fields ...[]byte) []byte { return bytes.Join(fields, nil) }
	l := func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), b)
	}
	data := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x"))
	for name, b := range map[string][]byte{
		"unknown field":         protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), nil),
		"varint data":           protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1),
		"data twice":            node(data, data),
		"links around data":     node(l(link(hash)), data, l(link(hash))),
		"link without hash":     node(l(link(name, tsize))),
		"name before hash":      node(l(link(name, hash))),
		"tsize twice":           node(l(link(hash, tsize, tsize))),
		"tsize as bytes":        node(l(link(hash, protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), nil)))),
		"bad cid":               node(l(link(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{1, 2, 3})))),
		"cid with trailing":     node(l(link(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), append(testCID(1).Bytes(), 0))))),
		"truncated":             data[:len(data)-1],
		"truncated tag":         {0x80},
		"unknown link field":    node(l(link(hash, protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 1)))),
		"truncated link tsize":  node(l(link(hash, tsize[:1]))),
		"truncated link field":  node(l(link(hash[:5]))),
		"truncated link tag":    node(l([]byte{0x80})),
		"group wire type field": {0x0b},
	} {
		if _, err := content.DecodePBNode(b); !errors.Is(err, content.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestDecodeFSDataRejects(t *testing.T) {
	typ := func(v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), v)
	}
	for name, b := range map[string][]byte{
		"missing type":     protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1),
		"unknown type":     typ(6),
		"unknown field":    protowire.AppendVarint(protowire.AppendTag(typ(2), 9, protowire.VarintType), 1),
		"data as varint":   protowire.AppendVarint(protowire.AppendTag(typ(2), 2, protowire.VarintType), 1),
		"truncated varint": append(typ(2), 0x18),
		"truncated bytes":  append(typ(2), 0x12, 0x05, 'a'),
		"truncated packed": protowire.AppendBytes(protowire.AppendTag(typ(2), 4, protowire.BytesType), []byte{0x80}),
		"bad tag":          {0x80},
		"empty":            {},
	} {
		if _, err := content.DecodeFSData(b); !errors.Is(err, content.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func pbSeeds(f *testing.F) {
	f.Add([]byte{})
	n := content.PBNode{Links: []content.PBLink{{Hash: testCID(1), Name: "a", Tsize: 9}, {Hash: testCID(5)}}, Data: []byte("hi")}
	f.Add(n.Marshal())
	fs := content.FSData{Type: content.TFile, FileSize: 10, HasFileSize: true, BlockSizes: []uint64{4, 6}}
	f.Add((&content.PBNode{Links: n.Links, Data: fs.Marshal()}).Marshal())
	f.Add(fs.Marshal())
	f.Add((&content.FSData{Type: content.THAMTShard, Data: []byte{1}, HashType: 0x22, HasHashType: true, Fanout: 256, HasFanout: true}).Marshal())
}

// FuzzDecodePBNode: whatever decodes re-encodes to a fixed point, and
// go-codec-dagpb (through boxo) accepts it with the same content.
func FuzzDecodePBNode(f *testing.F) {
	pbSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := content.DecodePBNode(b)
		if err != nil {
			if !errors.Is(err, content.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		enc := n.Marshal()
		n2, err := content.DecodePBNode(enc)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !pbEqual(n, n2) || !bytes.Equal(n2.Marshal(), enc) {
			t.Fatal("decode/marshal not stable")
		}
		pn, err := mdag.DecodeProtobuf(b)
		if err != nil {
			t.Fatalf("shoal accepts what boxo rejects: %v", err)
		}
		if !bytes.Equal(pn.Data(), n.Data) || len(pn.Links()) != len(n.Links) {
			t.Fatalf("boxo decodes differently")
		}
		for i, l := range pn.Links() {
			if !l.Cid.Equals(n.Links[i].Hash) || l.Name != n.Links[i].Name || l.Size != n.Links[i].Tsize {
				t.Fatalf("link %d: boxo decodes differently", i)
			}
		}
	})
}

// FuzzDecodeFSData: whatever decodes re-encodes to a fixed point that
// boxo's protobuf reads the same way.
func FuzzDecodeFSData(f *testing.F) {
	pbSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := content.DecodeFSData(b)
		if err != nil {
			if !errors.Is(err, content.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		enc := d.Marshal()
		d2, err := content.DecodeFSData(enc)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !bytes.Equal(d2.Marshal(), enc) {
			t.Fatal("decode/marshal not stable")
		}
		var m unixfspb.Data
		if err := proto.Unmarshal(enc, &m); err != nil {
			t.Fatalf("boxo rejects shoal's encoding: %v", err)
		}
		if uint64(m.GetType()) != uint64(d.Type) || !bytes.Equal(m.Data, d.Data) || (m.Filesize != nil) != d.HasFileSize ||
			m.GetFilesize() != d.FileSize || !slices.Equal(m.Blocksizes, d.BlockSizes) ||
			m.GetHashType() != d.HashType || m.GetFanout() != d.Fanout {
			t.Fatalf("boxo reads %v, shoal %+v", &m, d)
		}
	})
}
