package dht

import (
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzParseAddrInfos feeds bootstrap lists (user input from config files and
// flags, newline-separated here): parsing never panics, and whatever parses
// has a peer ID and round-trips through its multiaddr form.
func FuzzParseAddrInfos(f *testing.F) {
	for _, s := range append(IPFSBootstrapPeers(),
		"/ip4/127.0.0.1/tcp/4001",
		"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8\n/ip6/::1/udp/1/quic-v1/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8",
		"/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
		"", "/", "garbage") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ais, err := ParseAddrInfos(strings.Split(in, "\n"))
		if err != nil {
			return
		}
		for _, ai := range ais {
			if ai.ID == "" {
				t.Fatalf("parsed %q into an AddrInfo without peer ID", in)
			}
			addrs, err := peer.AddrInfoToP2pAddrs(&ai)
			if err != nil {
				t.Fatalf("re-encode %v: %v", ai, err)
			}
			strs := make([]string, len(addrs))
			for i, a := range addrs {
				strs[i] = a.String()
			}
			again, err := ParseAddrInfos(strs)
			if err != nil || len(again) != 1 || again[0].ID != ai.ID {
				t.Fatalf("round trip of %v: %v, %v", ai, again, err)
			}
		}
	})
}
