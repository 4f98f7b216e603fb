package sim

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestHostOutboundLimit: a simulated host opens at most simMaxOutbound
// connections itself (the dials past it fail and leave no connection),
// and still accepts connections others open to it.
func TestHostOutboundLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newSimNet(nil)
		n.sn.Logger = slog.New(slog.DiscardHandler)
		n.sn.Start()
		defer n.sn.Close()
		hosts := make([]*simHost, simMaxOutbound+4)
		for i := range hosts {
			sh, err := n.newHost(hostSpec{index: i + 1, upMbit: 100, downMbit: 100, seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer sh.host.Close()
			hosts[i] = sh
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		h := hosts[0].host
		failed := 0
		for _, o := range hosts[1 : len(hosts)-1] {
			err := h.Connect(ctx, peer.AddrInfo{ID: o.host.ID(), Addrs: o.host.Addrs()})
			if err != nil {
				failed++
			}
		}
		out := 0
		for _, c := range h.Network().Conns() {
			if c.Stat().Direction == network.DirOutbound {
				out++
			}
		}
		if out != simMaxOutbound || failed != len(hosts)-2-simMaxOutbound {
			t.Fatalf("host 0 dialled %d hosts: %d outbound connections, %d dials failed; want %d and %d",
				len(hosts)-2, out, failed, simMaxOutbound, len(hosts)-2-simMaxOutbound)
		}
		last := hosts[len(hosts)-1].host
		if err := last.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatalf("a host dialling host 0, which is at its outbound limit: %v (want accepted)", err)
		}
		if got := h.Network().Connectedness(last.ID()); got != network.Connected {
			t.Fatalf("host 0 and the host that dialled it: %v, want connected", got)
		}
	})
}
