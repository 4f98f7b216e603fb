package sim

import (
	"context"
	"testing"

	"github.com/shoalnet/shoal/node"
)

// LoopbackNode starts one real node on 127.0.0.1 over TCP, without mDNS,
// in memory (no home) unless parts bring a store of the test's own; edit
// functions change its configuration first. It is closed when the test
// ends. It is for tests that reach a node from outside the simulated
// network (its HTTP API, Kubo's RPC and CLI, a real Kubo peer); tests of
// several nodes talking to each other use NewCluster.
func LoopbackNode(t testing.TB, parts node.Parts, edit ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig("")
	cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Network.MDNS = false
	cfg.Store.Sync = false
	for _, e := range edit {
		e(&cfg)
	}
	n, err := node.NewWithParts(cfg, parts)
	if err != nil {
		t.Fatalf("sim: a loopback node: %v", err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatalf("sim: starting a loopback node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("sim: closing a loopback node: %v", err)
		}
	})
	return n
}
