// Package transfer owns the fetches a node runs for its users and the
// policy around them: a registry of running and recent transfers (one per
// root: a second fetch of the same root joins the first), the no-progress
// timeout that ends a fetch whose peers accept requests but send nothing,
// announcing the root once this node holds verified blocks of it (so a
// leecher becomes a source while it downloads), and the read-ahead of a
// streamed file (its first read from the start fetches the whole DAG).
//
// How blocks are found, requested and verified is protocol's; what a
// finished fetch means for the node (pinning, its catalogue of roots) is
// the caller's, handed in as Config.Complete. A transfer's Status is raw
// state; node turns it into the API's TransferInfo.
//
// Files:
//   - registry.go: Registry (Start, Get, List, Close) and Config.
//   - transfer.go: Transfer, its Status, and the watch loop (progress,
//     no-progress timeout, announce-while-fetching, completion).
//   - readahead.go: ReadAhead, when a streaming read starts a fetch.
//
// It imports protocol (for its Fetch and progress types) and no other
// shoal package; it declares the small interfaces it needs: Fetcher and
// Announcer.
package transfer
