package protocol

import (
	"bufio"
	"bytes"
	"testing"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bspb "github.com/ipfs/boxo/bitswap/message/pb"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// boxo is the oracle here: what we encode it must decode to the same
// content, and what it encodes we must decode.

func TestInteropOursToBoxo(t *testing.T) {
	m := sampleMessage(t)
	var buf bytes.Buffer
	if err := WriteMessage(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, _, err := bsmsg.FromNet(&buf)
	if err != nil {
		t.Fatalf("boxo cannot decode our message: %v", err)
	}
	if got.Full() != m.Full || got.PendingBytes() != m.PendingBytes {
		t.Fatalf("full=%v pending=%d, want %v %d", got.Full(), got.PendingBytes(), m.Full, m.PendingBytes)
	}
	wants := map[cid.Cid]bsmsg.Entry{}
	for _, e := range got.Wantlist() {
		wants[e.Cid] = e
	}
	if len(wants) != len(m.Wants) {
		t.Fatalf("boxo saw %d wants, want %d", len(wants), len(m.Wants))
	}
	for _, e := range m.Wants {
		be, ok := wants[e.CID]
		if !ok || be.Priority != e.Priority || be.Cancel != e.Cancel ||
			int32(be.WantType) != int32(e.WantType) || be.SendDontHave != e.SendDontHave {
			t.Fatalf("entry %+v decoded by boxo as %+v", e, be)
		}
	}
	blks := map[cid.Cid][]byte{}
	for _, b := range got.Blocks() {
		blks[b.Cid()] = b.RawData()
	}
	for _, b := range m.Blocks {
		if !bytes.Equal(blks[b.CID], b.Data) {
			t.Fatalf("block %s lost or changed in boxo's decoding", b.CID)
		}
	}
	pres := map[cid.Cid]bspb.Message_BlockPresenceType{}
	for _, p := range got.BlockPresences() {
		pres[p.Cid] = p.Type
	}
	for _, p := range m.Presences {
		if bt, ok := pres[p.CID]; !ok || int32(bt) != int32(p.Type) {
			t.Fatalf("presence %+v decoded by boxo as %v (present %v)", p, bt, ok)
		}
	}
}

func TestInteropBoxoToOurs(t *testing.T) {
	ref := sampleMessage(t)
	bm := bsmsg.New(true)
	for _, e := range ref.Wants {
		if e.Cancel {
			bm.Cancel(e.CID)
			continue
		}
		bm.AddEntry(e.CID, e.Priority, bspb.Message_Wantlist_WantType(e.WantType), e.SendDontHave)
	}
	for _, b := range ref.Blocks {
		blk, err := blocks.NewBlockWithCid(b.Data, b.CID)
		if err != nil {
			t.Fatal(err)
		}
		bm.AddBlock(blk)
	}
	for _, p := range ref.Presences {
		bm.AddBlockPresence(p.CID, bspb.Message_BlockPresenceType(p.Type))
	}
	bm.SetPendingBytes(ref.PendingBytes)

	for _, v0 := range []bool{false, true} {
		var buf bytes.Buffer
		write := bm.ToNetV1
		if v0 {
			write = bm.ToNetV0
		}
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		got, err := ReadMessage(bufio.NewReader(&buf))
		if err != nil {
			t.Fatalf("v0=%v: decoding boxo's message: %v", v0, err)
		}
		checkBoxoDecoded(t, ref, got, v0)
	}
}

func checkBoxoDecoded(t *testing.T, ref, got *Message, v0 bool) {
	t.Helper()
	if got.Full != ref.Full {
		t.Fatalf("v0=%v: full=%v", v0, got.Full)
	}
	wants := map[cid.Cid]Entry{}
	for _, e := range got.Wants {
		wants[e.CID] = e
	}
	for _, e := range ref.Wants {
		g, ok := wants[e.CID]
		if e.Cancel { // boxo encodes a cancel as just the CID and the flag
			if !ok || !g.Cancel {
				t.Fatalf("v0=%v: cancel for %s decoded as %+v", v0, e.CID, g)
			}
			continue
		}
		if !ok || g != e {
			t.Fatalf("v0=%v: entry %+v decoded as %+v", v0, e, g)
		}
	}
	blks := map[string][]byte{}
	for _, b := range got.Blocks {
		if !v0 {
			blks[b.CID.KeyString()] = b.Data
		} else {
			blks[string(b.Data)] = b.Data // 1.0.0 re-derives CIDv0; compare bytes
		}
	}
	for _, b := range ref.Blocks {
		key := b.CID.KeyString()
		if v0 {
			key = string(b.Data)
		}
		if !bytes.Equal(blks[key], b.Data) {
			t.Fatalf("v0=%v: block %s missing", v0, b.CID)
		}
	}
	if v0 {
		return // 1.0.0 has no presences or pendingBytes
	}
	if got.PendingBytes != ref.PendingBytes || len(got.Presences) != len(ref.Presences) {
		t.Fatalf("pending=%d presences=%+v", got.PendingBytes, got.Presences)
	}
	for _, p := range ref.Presences {
		found := false
		for _, q := range got.Presences {
			found = found || q == p
		}
		if !found {
			t.Fatalf("presence %+v missing", p)
		}
	}
}
