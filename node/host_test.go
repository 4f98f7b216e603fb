package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// TestTCPSecurityTLSFirst: two shoal nodes secure a TCP connection with
// TLS 1.3 (AES-GCM where the CPU has AES instructions, much cheaper per
// byte than Noise's ChaCha20-Poly1305), and a peer that offers only
// Noise — as Helia does by default — still connects, over Noise.
func TestTCPSecurityTLSFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startNode(t, testConfig())
	b := startNode(t, testConfig())
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	if got := securityTo(t, b, a.Host().ID()); got != tls.ID {
		t.Errorf("shoal to shoal over TCP negotiated %q, want %q", got, tls.ID)
	}

	for _, sec := range []struct {
		id  protocol.ID
		opt libp2p.Option
	}{
		{noise.ID, libp2p.Security(noise.ID, noise.New)},
		{tls.ID, libp2p.Security(tls.ID, tls.New)},
	} {
		h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport), sec.opt,
			libp2p.DisableRelay(), libp2p.ResourceManager(&network.NullResourceManager{}))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		addr, err := ma.NewMultiaddr(a.Info().Addresses[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Connect(ctx, peer.AddrInfo{ID: a.Host().ID(), Addrs: []ma.Multiaddr{addr}}); err != nil {
			t.Fatalf("a peer offering only %s cannot connect: %v", sec.id, err)
		}
		if got := securityTo(t, a, h.ID()); got != sec.id {
			t.Errorf("a peer offering only %s connected with %q", sec.id, got)
		}
	}
}

// securityTo is the security protocol of n's connection to p.
func securityTo(t *testing.T, n *Node, p peer.ID) protocol.ID {
	t.Helper()
	conns := n.Host().Network().ConnsToPeer(p)
	if len(conns) == 0 {
		t.Fatalf("no connection to %s", p)
	}
	return conns[0].ConnState().Security
}
