// Package p2ptest starts real libp2p hosts for the tests of the parts that
// speak libp2p themselves — protocol, dht and transfer — which have no
// node to build on: each host listens on 127.0.0.1 over TCP, has no relay
// and is closed when the test ends. Blocks (blocks.go) is the in-memory
// block store their exchange peers serve from and fetch into. Tests of
// several whole nodes use sim.NewCluster instead.
//
// It imports no shoal package, so protocol and dht, which may import
// none, can use it in their tests.
package p2ptest

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Host starts a host on 127.0.0.1 TCP; opts come after these defaults
// and so override them (libp2p.NoSecurity, a resource manager, more
// transports).
func Host(tb testing.TB, opts ...libp2p.Option) host.Host {
	tb.Helper()
	all := append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay()}, opts...)
	h, err := libp2p.New(all...)
	if err != nil {
		tb.Fatalf("p2ptest: starting a libp2p host on 127.0.0.1: %v", err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// Info is h's peer ID and addresses, for Connect and provider lists.
func Info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// Addr is h's first address with its peer ID (…/p2p/<id>), as a node's
// Connect and a bootstrap list take it.
func Addr(h host.Host) string { return h.Addrs()[0].String() + "/p2p/" + h.ID().String() }

// Connect connects a to b.
func Connect(tb testing.TB, a, b host.Host) {
	tb.Helper()
	if err := a.Connect(context.Background(), Info(b)); err != nil {
		tb.Fatalf("p2ptest: connecting %s to %s: %v", a.ID(), b.ID(), err)
	}
}
