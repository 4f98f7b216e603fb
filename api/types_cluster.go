package api

// Cluster is GET /api/v1/cluster: the IPFS Cluster peer's view of this
// node's pins (config key cluster.rest_addr), read from its REST API.
type Cluster struct {
	// RESTAddr is the cluster peer's REST API address.
	RESTAddr string `json:"rest_addr"`
	// Error says why the cluster could not be read (the pins are then
	// those of the last good read, or none).
	Error string       `json:"error,omitempty"`
	Pins  []ClusterPin `json:"pins"`
}

// ClusterPin is one pin of the cluster's pinset: the replication it
// wants and what its peers report.
type ClusterPin struct {
	CID  string `json:"cid"`
	Name string `json:"name,omitempty"`
	// ReplicationMin and ReplicationMax are the pin's replication
	// factors; -1 means on every cluster peer.
	ReplicationMin int `json:"replication_min"`
	ReplicationMax int `json:"replication_max"`
	// Allocations is how many peers the cluster allocated the pin to;
	// Pinned how many report status "pinned".
	Allocations int                 `json:"allocations"`
	Pinned      int                 `json:"pinned"`
	Peers       []ClusterPeerStatus `json:"peers"`
}

// ClusterPeerStatus is one cluster peer's status for a pin.
type ClusterPeerStatus struct {
	Peer   string `json:"peer"` // the cluster peer's ID
	Name   string `json:"name,omitempty"`
	Status string `json:"status"` // the cluster's tracker status: "pinned", "pinning", "pin_error", ...
	Error  string `json:"error,omitempty"`
}
