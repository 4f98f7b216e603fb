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

// TestHostCountsStreamsByProtocol: a host's protocol counter has every
// byte a stream of a protocol carried, in its direction, and the bytes
// an inbound stream read before its protocol was known (multistream
// negotiation) under negotiationProtocol; a light link carries nothing
// beyond its streams.
func TestHostCountsStreamsByProtocol(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		results := make(chan sinkResult, 2)
		spec := func(i int) hostSpec { return hostSpec{index: i, upMbit: 20, downMbit: 20} }
		_, h := lightHosts(t, results, spec(1), spec(2))
		connect(t, h[0], h[1])
		const f = 300 << 10
		send(t, h[0], h[1], makeContent(3, f))
		<-results
		synctest.Wait()
		a, b := h[0].proto.bytes(), h[1].proto.bytes()
		if got := a[sinkProto]; got.Up < f || got.Up > f+64 || got.Down > 64 {
			t.Errorf("sender's %s bytes = %+v, want %d up and the negotiation both ways", sinkProto, got, f)
		}
		if got := b[sinkProto]; got.Down != f || got.Up != 0 {
			t.Errorf("receiver's %s bytes = %+v, want %d down", sinkProto, got, f)
		}
		if got := b[negotiationProtocol]; got.Down == 0 {
			t.Errorf("receiver counted no negotiation bytes read before the protocol was set: %v", b)
		}
		for _, p := range []string{"/ipfs/id/1.0.0"} {
			if a[p].Down == 0 || b[p].Up == 0 {
				t.Errorf("identify not counted: sender %+v, receiver %+v", a[p], b[p])
			}
		}
		var streams int64
		for _, v := range b {
			streams += v.Down
		}
		if _, down := h[1].traffic(); down != streams {
			t.Errorf("receiver's link carried %d bytes, its streams %d: a light link has no transport bytes", down, streams)
		}
	})
}
