package api

// Swarm is GET /api/v1/swarm: who serves whom. For each running transfer
// and shared root, the availability map as BitTorrent clients draw it (a
// bar of the DAG's blocks in walk order, each cell shaded by how many
// known peers hold it, this node's own blocks marked); for each connected
// peer, its share and the four choke/interest flags; this node's upload
// slots.
type Swarm struct {
	// Extension: the swarm extension (/shoal/swarm/1.0.0) runs on this
	// node. Off, no peer sends maps or choke messages: the roots show only
	// this node's own blocks and the peers what plain Bitswap knows (bytes).
	Extension bool        `json:"extension"`
	Slots     UploadSlots `json:"slots"`
	Roots     []SwarmRoot `json:"roots"`
	Peers     []SwarmPeer `json:"peers"`
}

// UploadSlots is how many swarm peers this node uploads to now (Used) of
// how many it may (Total: the regular slots plus one optimistic unchoke).
// Peers without the extension are never choked and take no slot.
type UploadSlots struct {
	Used       int    `json:"used"`
	Total      int    `json:"total"`
	Optimistic string `json:"optimistic,omitempty"` // the optimistic unchoke's peer ID
	Origin     bool   `json:"origin"`               // origin mode (super-seeding) is on
}

// Swarm root roles.
const (
	RoleFetching = "fetching" // a running transfer
	RoleSharing  = "sharing"  // a root this node holds
)

// SwarmRoot is one root's availability map. The bar covers the blocks
// known here, in walk order (depth-first pre-order from the root, links
// in order, each block at its first visit): a running fetch knows only
// the blocks under the interior blocks it holds (Partial). A DAG of more
// than the API's cell limit is drawn with several blocks per cell.
type SwarmRoot struct {
	CID        string `json:"cid"`
	Name       string `json:"name,omitempty"`
	Role       string `json:"role"` // RoleFetching or RoleSharing
	TransferID string `json:"transfer_id,omitempty"`
	// Blocks is the number of blocks the bar covers; Held, how many of
	// them this node holds.
	Blocks int `json:"blocks"`
	Held   int `json:"held"`
	// Partial: blocks below a block not held here are not known yet.
	Partial bool `json:"partial"`
	// BlocksPerCell blocks make one cell (the last may have fewer).
	BlocksPerCell int `json:"blocks_per_cell"`
	// Avail is, per cell, the fewest known peers holding any of its
	// blocks (BitTorrent's availability); Local, how many of its blocks
	// this node holds.
	Avail []int           `json:"avail"`
	Local []int           `json:"local"`
	Peers []SwarmRootPeer `json:"peers"`
}

// SwarmRootPeer is what one swarm peer told this node about one root.
type SwarmRootPeer struct {
	Peer       string `json:"peer"`
	Blocks     int    `json:"blocks"` // of the bar's blocks, how many it holds
	Complete   bool   `json:"complete"`
	Interested bool   `json:"interested"` // it fetches the root
}

// SwarmPeer is one connected peer, with BitTorrent's four flags.
type SwarmPeer struct {
	Peer      string `json:"peer"`
	Extension bool   `json:"extension"` // it speaks the swarm extension with this node
	BytesIn   uint64 `json:"bytes_in"`  // block bytes received from it
	BytesOut  uint64 `json:"bytes_out"` // block bytes sent to it
	// AmChoking: this node does not upload to it now. AmInterested: it
	// holds blocks of a root this node fetches that this node lacks.
	// PeerChoking: it does not upload to this node. PeerInterested: it
	// wants blocks from this node. A peer without the extension is never
	// choked either way.
	AmChoking      bool `json:"am_choking"`
	AmInterested   bool `json:"am_interested"`
	PeerChoking    bool `json:"peer_choking"`
	PeerInterested bool `json:"peer_interested"`
	Optimistic     bool `json:"optimistic"` // it holds this node's optimistic unchoke
}
