// Package dht owns Kademlia routing for a shoal node: bootstrapping,
// providing and reproviding root CIDs, finding providers as a stream, and
// LAN discovery. It is built on go-libp2p-kad-dht, whose sweeping provider
// announces roots in batches per keyspace region instead of one DHT lookup
// per root, so a node can keep 100 000 roots announced.
//
// A Router joins one of two networks: shoal's own DHT (protocol prefix
// /shoal, the default, bootstrapped from the fleet's own peers) or the public
// IPFS DHT (prefix /ipfs, Kubo's bootstrap peers). The node package creates
// one Router per host with New, calls Start (or Run) and Bootstrap, hands it
// every root to announce with Provide, and asks it for providers with
// FindProviders.
//
// Files:
//   - config.go: Mode, Config, DefaultConfig, Validate, network constants
//     and the public IPFS bootstrap list.
//   - router.go: Router: construction (kad-dht and sweeping provider wiring),
//     Start/Run/Bootstrap, FindProviders, routing-table views, Close.
//   - provide.go: the provide set: Provide (batched hand-off to the
//     provider), StopProviding, per-root last announcement times taken from
//     the ADD_PROVIDER messages the provider sends, ProvideStatus.
//   - upkeep.go: routing-table upkeep: the refresh deferred past the
//     join (RefreshDelay) and kad-dht's admission checks paced per peer.
//   - mdns.go: LAN discovery: go-libp2p mDNS with a notifee that dials found
//     peers (kad-dht then adds them to the routing table).
//
// The Router owns every goroutine it starts and joins them in Close; the
// host and any Datastore passed in stay owned by the caller.
//
// It imports no other shoal package.
package dht
