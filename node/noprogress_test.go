package node

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/internal/p2ptest"
	"github.com/shoalnet/shoal/protocol"
)

// TestFetchEndsWhenPeersNeverAnswer: a peer says HAVE to every want and
// never sends a block. The fetch must end after the no-progress timeout
// with an error that names the CID and the peer, not wait forever.
func TestFetchEndsWhenPeersNeverAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var liar host.Host
	liar = bitswapPeer(t, func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		for {
			m, err := protocol.ReadMessage(r)
			if err != nil {
				return
			}
			var reply protocol.Message
			for _, w := range m.Wants {
				if !w.Cancel {
					reply.Presences = append(reply.Presences, protocol.Presence{CID: w.CID, Type: protocol.Have})
				}
			}
			if len(reply.Presences) == 0 {
				continue
			}
			out, err := liar.NewStream(ctx, s.Conn().RemotePeer(), "/ipfs/bitswap/1.2.0")
			if err != nil {
				return
			}
			_ = protocol.WriteMessage(out, &reply)
			out.Close()
		}
	})
	cfg := testConfig()
	cfg.Transfer.NoProgressTimeout = Duration{2 * time.Second}
	b := startNode(t, cfg)
	if err := b.Connect(ctx, p2ptest.Addr(liar)); err != nil {
		t.Fatal(err)
	}
	h, _ := mh.Sum([]byte("content nobody will send"), mh.SHA2_256, -1)
	want := cid.NewCidV1(cid.Raw, h)
	tr, err := b.Fetch(ctx, want, "test")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatal("the fetch did not end although its only peer never sends anything")
	}
	err = tr.Err()
	if err == nil {
		t.Fatal("fetch succeeded with no data")
	}
	for _, part := range []string{want.String(), "received nothing", liar.ID().String()} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	if info := tr.Info(); info.State != TransferFailed || info.Error == "" {
		t.Errorf("transfer info = %+v, want failed with the error", info)
	}
}

// bitswapPeer is a bare libp2p host on 127.0.0.1 (p2ptest) that serves
// every Bitswap protocol ID with handle: a peer written by hand, to
// misbehave.
func bitswapPeer(t *testing.T, handle network.StreamHandler) host.Host {
	t.Helper()
	h := p2ptest.Host(t)
	for _, proto := range []string{"/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0", "/ipfs/bitswap"} {
		h.SetStreamHandler(libp2pprotocol.ID(proto), handle)
	}
	return h
}
