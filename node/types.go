package node

import (
	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/api"
)

// What the node reports about itself is in package api's types: the names
// below are aliases, not copies, so what a method returns is what web
// sends on the wire, with nothing converting between two declarations
// that could drift apart. node keeps its own names for them so that its
// callers (web, sim, cmd/shoal and their tests) read as before.
type (
	// Info describes this node (api.Info).
	Info = api.Info
	// PeerInfo describes one connected peer (api.Peer).
	PeerInfo = api.Peer
	// RootInfo describes content this node holds a root of (api.Root).
	RootInfo = api.Root
	// PeerContribution is how much one remote peer supplied to a
	// transfer (api.PeerContribution).
	PeerContribution = api.PeerContribution
	// TransferInfo is a snapshot of one fetch (api.Transfer).
	TransferInfo = api.Transfer
	// GCResult reports a garbage collection (api.GCResult).
	GCResult = api.GCResult
	// VerifyReport is what `shoal repo verify` found (api.VerifyReport).
	VerifyReport = api.VerifyReport
	// IncompletePin is a pin with missing blocks (api.IncompletePin).
	IncompletePin = api.IncompletePin
	// RoutingBucket is one bucket of the DHT routing table
	// (api.RoutingBucket).
	RoutingBucket = api.RoutingBucket
)

// Transfer phases, while running (TransferInfo.Phase).
const (
	PhaseSearching = api.PhaseSearching
	PhaseFetching  = api.PhaseFetching
)

// Transfer states (TransferInfo.State).
const (
	TransferRunning = api.TransferRunning
	TransferDone    = api.TransferDone
	TransferFailed  = api.TransferFailed
)

// AddResult is what sharing content produced. It is node's own, not the
// API's: it carries the root as a cid.Cid (web sends api.AddResult, whose
// CID is the string form).
type AddResult struct {
	CID    cid.Cid
	Name   string
	Size   uint64
	Blocks int
}
