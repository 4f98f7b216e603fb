package api

import "time"

// Info describes a node: part of GET /api/v1/id and GET /api/v1/stat.
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

// ID is GET /api/v1/id: the node's Info plus where its HTTP surfaces are.
type ID struct {
	Info
	API     string `json:"api"`
	Gateway string `json:"gateway"`
}

// Stat is GET /api/v1/stat: the node's Info and counts.
type Stat struct {
	Info
	Peers           int `json:"peers"`
	Roots           int `json:"roots"`
	TransfersActive int `json:"transfers_active"`
}

// Peer is one entry of GET /api/v1/peers: a connected peer.
type Peer struct {
	ID        string  `json:"peer"`
	Address   string  `json:"address"`
	Transport string  `json:"transport"` // "tcp", "quic-v1", ...
	LatencyMS float64 `json:"latency_ms"`
	BytesIn   uint64  `json:"bytes_in"`  // block bytes received from the peer
	BytesOut  uint64  `json:"bytes_out"` // block bytes sent to the peer
	Score     float64 `json:"score"`
}

// Connect is the body of POST /api/v1/connect and its answer.
type Connect struct {
	Addr string `json:"addr"` // a multiaddr ending in /p2p/<peer id>
}

// AddResult is POST /api/v1/add: what sharing content produced.
type AddResult struct {
	CID    string `json:"cid"`
	Name   string `json:"name,omitempty"`
	Size   uint64 `json:"size"`
	Blocks int    `json:"blocks"`
}

// Root is one entry of GET /api/v1/ls: content the node holds a root of.
type Root struct {
	CID          string    `json:"cid"`
	Name         string    `json:"name,omitempty"` // the name it was shared under, when known
	Size         uint64    `json:"size"`
	Pinned       bool      `json:"pinned"`
	Providing    bool      `json:"providing"`
	LastProvided time.Time `json:"last_provided,omitzero"`
}

// CIDStat is GET /api/v1/stat/{cid}[/path]. Name is a root's shared name,
// or a path's last segment.
type CIDStat struct {
	CID     string `json:"cid"`
	Name    string `json:"name,omitempty"`
	Type    string `json:"type"` // TypeFile, TypeDirectory or TypeSymlink
	Size    uint64 `json:"size"` // file bytes; for a directory the sum of its entries' sizes
	Entries int    `json:"entries,omitempty"`
	Root    bool   `json:"root"`   // a root this node holds
	Pinned  bool   `json:"pinned"` // a pinned root
}

// CIDStat types.
const (
	TypeFile      = "file"
	TypeDirectory = "directory"
	TypeSymlink   = "symlink"
)

// PeerContribution is how much one remote peer supplied to a transfer.
type PeerContribution struct {
	Peer   string `json:"peer"`
	Bytes  uint64 `json:"bytes"`
	Blocks int    `json:"blocks"`
}

// Transfer states.
const (
	TransferRunning = "running"
	TransferDone    = "done"
	TransferFailed  = "failed"
)

// Transfer phases, while running.
const (
	PhaseSearching = "searching"
	PhaseFetching  = "fetching"
)

// Transfer is a snapshot of one fetch: POST /api/v1/fetch, GET
// /api/v1/transfers[/{id}] and POST /api/v1/transfers/{id}/cancel.
type Transfer struct {
	ID             string             `json:"id"`
	CID            string             `json:"cid"`
	Name           string             `json:"name,omitempty"` // what the content is called, when the node knows
	Source         string             `json:"source"`         // "api", "gateway", ...
	State          string             `json:"state"`
	Phase          string             `json:"phase,omitempty"` // while running: PhaseSearching (no peer has the content yet) or PhaseFetching
	Providers      int                `json:"providers"`       // distinct providers the DHT lookups found
	Lookups        int                `json:"lookups"`         // DHT lookups made
	ElapsedSeconds float64            `json:"elapsed_s"`       // since the transfer started
	Pinned         bool               `json:"pinned"`          // the root is pinned once fetched, not left as cache
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

// PinResult is POST /api/v1/pin/{cid} and /api/v1/unpin/{cid}.
type PinResult struct {
	CID    string `json:"cid"`
	Pinned bool   `json:"pinned"`
}

// GCResult is POST /api/v1/gc.
type GCResult struct {
	Removed int   `json:"removed"`
	Bytes   int64 `json:"bytes"`
}

// VerifyReport is POST /api/v1/repo/verify: every stored block rehashed
// against its CID, and every pin checked for missing blocks.
type VerifyReport struct {
	Checked int   `json:"checked"` // blocks rehashed
	Bytes   int64 `json:"bytes"`   // their bytes
	// Corrupt blocks did not hash to their CID; they were removed.
	Corrupt []string `json:"corrupt"`
	// Vanished blocks were indexed but their data was gone; forgotten.
	Vanished []string `json:"vanished"`
	// RefsGone are blocks the store kept as references into a file
	// (a fetched or --no-copy shared file) that no longer holds them: it
	// was moved, truncated or edited. They were dropped and count as
	// missing; the store itself is not damaged.
	RefsGone []string `json:"refs_gone"`
	// Pins is the number of pin roots.
	Pins int `json:"pins"`
	// Incomplete lists the pins whose DAG is missing blocks.
	Incomplete []IncompletePin `json:"incomplete"`
	// Relisted are pinned roots that were missing from the roots
	// catalogue and were added back.
	Relisted []string `json:"relisted"`
}

// IncompletePin is a pin with missing blocks.
type IncompletePin struct {
	CID     string `json:"cid"`
	Blocks  int    `json:"blocks"`  // stored blocks under the root
	Missing int    `json:"missing"` // linked blocks not stored
}

// Damaged reports whether the check found blocks that were corrupt or
// gone: content that used them must be fetched again.
func (r VerifyReport) Damaged() bool { return len(r.Corrupt) > 0 || len(r.Vanished) > 0 }

// RoutingBucket is one bucket of the DHT routing table: the peers sharing
// Index leading bits with the node's key (the dashboard's event stream).
type RoutingBucket struct {
	Index int `json:"index"`
	Peers int `json:"peers"`
}

// Event is one "snapshot" server-sent event of GET /api/v1/events: the
// node now, its peers and its transfers.
type Event struct {
	Time      time.Time  `json:"time"`
	Info      Info       `json:"info"`
	Peers     []Peer     `json:"peers"`
	Transfers []Transfer `json:"transfers"`
}
