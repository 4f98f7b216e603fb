package node

import (
	"time"

	"github.com/ipfs/go-cid"
)

// Info describes this node, for `shoal id`, `shoal stat` and the dashboard.
type Info struct {
	ID               string    `json:"id"`
	Addresses        []string  `json:"addresses"`
	Started          time.Time `json:"started"`
	DHTMode          string    `json:"dht_mode"`
	Network          string    `json:"network"`
	RoutingTableSize int       `json:"routing_table_size"`
	StoreBlocks      int64     `json:"store_blocks"`
	StoreBytes       int64     `json:"store_bytes"`
	CapacityBytes    int64     `json:"capacity_bytes"` // 0 = unlimited
	ProvideQueue     int       `json:"provide_queue"`
}

// PeerInfo describes one connected peer.
type PeerInfo struct {
	ID        string  `json:"peer"`
	Address   string  `json:"address"`
	Transport string  `json:"transport"` // "tcp", "quic-v1", ...
	LatencyMS float64 `json:"latency_ms"`
	BytesIn   uint64  `json:"bytes_in"`  // block bytes received from the peer
	BytesOut  uint64  `json:"bytes_out"` // block bytes sent to the peer
	Score     float64 `json:"score"`
}

// RootInfo describes content this node holds a root of.
type RootInfo struct {
	CID          string    `json:"cid"`
	Name         string    `json:"name,omitempty"` // the name it was shared under, when known
	Size         uint64    `json:"size"`
	Pinned       bool      `json:"pinned"`
	Providing    bool      `json:"providing"`
	LastProvided time.Time `json:"last_provided,omitzero"`
}

// AddResult is what sharing content produced.
type AddResult struct {
	CID    cid.Cid `json:"-"`
	Name   string  `json:"name,omitempty"`
	Size   uint64  `json:"size"`
	Blocks int     `json:"blocks"`
}

// PeerContribution is how much one remote peer supplied to a transfer.
type PeerContribution struct {
	Peer   string `json:"peer"`
	Bytes  uint64 `json:"bytes"`
	Blocks int    `json:"blocks"`
}

// Transfer phases, while running.
const (
	PhaseSearching = "searching"
	PhaseFetching  = "fetching"
)

// Transfer states.
const (
	TransferRunning = "running"
	TransferDone    = "done"
	TransferFailed  = "failed"
)

// TransferInfo is a snapshot of one fetch.
type TransferInfo struct {
	ID             string             `json:"id"`
	CID            string             `json:"cid"`
	Name           string             `json:"name,omitempty"` // what the content is called, when this node knows
	Source         string             `json:"source"`         // "api", "gateway", ...
	State          string             `json:"state"`
	Phase          string             `json:"phase,omitempty"` // while running: "searching" (no peer has the content yet) or "fetching"
	Providers      int                `json:"providers"`       // distinct providers the DHT lookups found
	Lookups        int                `json:"lookups"`         // DHT lookups made
	ElapsedSeconds float64            `json:"elapsed_s"`       // since the transfer started
	Pinned         bool               `json:"pinned"`          // the root is pinned once fetched (shoal fetch), not left as cache
	Size           uint64             `json:"size"`            // bytes of the whole DAG when known, else 0
	BytesDone      uint64             `json:"bytes_done"`      // DAG bytes now held locally
	BytesReceived  uint64             `json:"bytes_received"`  // bytes that came over the network, duplicates included
	Blocks         int                `json:"blocks"`
	RateBps        float64            `json:"rate_bps"`
	ETASeconds     float64            `json:"eta_s"`
	DuplicateRatio float64            `json:"duplicate_ratio"`
	Started        time.Time          `json:"started"`
	Finished       time.Time          `json:"finished,omitzero"`
	Error          string             `json:"error,omitempty"`
	Peers          []PeerContribution `json:"peers"`
}

// GCResult reports a garbage collection.
type GCResult struct {
	Removed int   `json:"removed"`
	Bytes   int64 `json:"bytes"`
}
