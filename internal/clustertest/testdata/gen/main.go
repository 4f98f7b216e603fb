// Command gen writes the recorded REST answers in .. with ipfs-cluster
// v1.1.6's own API types: (cd testdata/gen && GOFLAGS=-mod=mod go run . allocations >
// ../allocations.ndjson && GOFLAGS=-mod=mod go run . pins > ../pins.ndjson). A module
// of its own so that shoal does not depend on ipfs-cluster.
package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/ipfs-cluster/ipfs-cluster/api"
	"github.com/libp2p/go-libp2p/core/peer"
)

func main() {
	c1, _ := api.DecodeCid("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
	c2, _ := api.DecodeCid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	p1, _ := peer.Decode("12D3KooWGRUVh7mJgbmPTWN3nY3RqXYC4TVYsQnVhkBwwuTT3pGz")
	p2, _ := peer.Decode("12D3KooWNz3oy3TVuhpsPXj7nzzcqvfMxxRZ1UH9fDG4oAKBtP4d")
	p3, _ := peer.Decode("12D3KooWSsyt8Dg3NxiRRTFVvsyxBSzTU4z4KSr5dAXWV3iehRb3")
	ts := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	enc := json.NewEncoder(os.Stdout)
	mk := func(c api.Cid, name string, min, max int, allocs []peer.ID) api.Pin {
		opts := api.PinOptions{ReplicationFactorMin: min, ReplicationFactorMax: max, Name: name, Mode: api.PinModeRecursive}
		p := api.PinWithOpts(c, opts)
		p.Allocations = allocs
		p.Timestamp = ts
		return p
	}
	switch os.Args[1] {
	case "allocations":
		enc.Encode(mk(c1, "movie.mkv", 2, 3, []peer.ID{p1, p2}))
		enc.Encode(mk(c2, "", -1, -1, nil))
	case "pins":
		g := api.GlobalPinInfo{Cid: c1, Name: "movie.mkv", Allocations: []peer.ID{p1, p2}, Created: ts, PeerMap: map[string]api.PinInfoShort{
			p1.String(): {PeerName: "shoal-a", IPFS: p1, Status: api.TrackerStatusPinned, TS: ts},
			p2.String(): {PeerName: "shoal-b", IPFS: p2, Status: api.TrackerStatusPinning, TS: ts, AttemptCount: 1},
			p3.String(): {PeerName: "shoal-c", IPFS: p3, Status: api.TrackerStatusRemote, TS: ts},
		}}
		enc.Encode(g)
		g2 := api.GlobalPinInfo{Cid: c2, Created: ts, PeerMap: map[string]api.PinInfoShort{
			p1.String(): {PeerName: "shoal-a", IPFS: p1, Status: api.TrackerStatusPinned, TS: ts},
			p2.String(): {PeerName: "shoal-b", IPFS: p2, Status: api.TrackerStatusPinned, TS: ts},
			p3.String(): {PeerName: "shoal-c", IPFS: p3, Status: api.TrackerStatusPinError, TS: ts, Error: "context deadline exceeded"},
		}}
		enc.Encode(g2)
	}
}
