package dht

import (
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestLANPeerJoinsRoutingTable drives the mDNS notifee directly: a peer it
// is told about gets connected and lands in both routing tables.
func TestLANPeerJoinsRoutingTable(t *testing.T) {
	a := newUnstartedNode(t, testConfig(t))
	b := newUnstartedNode(t, testConfig(t))
	var dials sync.WaitGroup
	pc := newPeerConnector(a.r.ctx, a.h, a.r.log, &dials)

	pc.HandlePeerFound(peer.AddrInfo{ID: a.h.ID(), Addrs: a.h.Addrs()}) // self: ignored
	pc.HandlePeerFound(peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()})
	waitFor(t, 30*time.Second, "LAN peer in both routing tables", func() bool {
		return a.r.Size() == 1 && b.r.Size() == 1
	})
	if a.r.Peers()[0] != b.h.ID() {
		t.Fatalf("A's table holds %v, want %s", a.r.Peers(), b.h.ID())
	}

	// After stop, found peers are ignored (mDNS may still call back).
	c := newUnstartedNode(t, testConfig(t))
	pc.stop()
	pc.HandlePeerFound(peer.AddrInfo{ID: c.h.ID(), Addrs: c.h.Addrs()})
	dials.Wait()
	if a.h.Network().Connectedness(c.h.ID()) == network.Connected {
		t.Fatal("stopped connector dialled a peer")
	}
}

// TestMDNSDiscovery runs real mDNS between two routers. Tests may only use
// loopback, and Linux loopback usually has no MULTICAST flag, so this runs
// only when it has, or when SHOAL_TEST_MDNS=1 allows multicast on the LAN.
func TestMDNSDiscovery(t *testing.T) {
	if os.Getenv("SHOAL_TEST_MDNS") != "1" && !loopbackMulticast() {
		t.Skip("mDNS needs multicast: loopback lacks the MULTICAST flag here and tests must not use other interfaces; set SHOAL_TEST_MDNS=1 to run it on the LAN")
	}
	cfg := testConfig(t)
	cfg.MDNS = true
	cfg.MDNSServiceName = "_shoaltest._udp"
	a := newNode(t, cfg)
	b := newNode(t, cfg)
	if a.r.mdns == nil || b.r.mdns == nil {
		t.Skip("mDNS service failed to start (no multicast interface)")
	}
	waitFor(t, 30*time.Second, "mDNS discovery", func() bool {
		return a.h.Network().Connectedness(b.h.ID()) == network.Connected
	})
	waitFor(t, 30*time.Second, "discovered peers in routing tables", func() bool {
		return a.r.Size() >= 1 && b.r.Size() >= 1
	})
}

func loopbackMulticast() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 {
			return true
		}
	}
	return false
}
