// Package swarm owns shoal's swarm extension: a libp2p protocol,
// /shoal/swarm/1.0.0, that two shoal nodes speak beside Bitswap so that a
// fetcher knows who holds what without probing, a server can choke, and
// a crowd finds itself without a DHT walk each. A peer that does not
// speak it (Kubo, Helia, boxo) is served and fetched over plain Bitswap
// exactly as before: the extension adds knowledge, never a second way to
// refuse or corrupt blocks.
//
// # Messages
//
// Each message is a uvarint length (at most MaxMessageSize) and a body:
// a version byte (Version), a kind byte, then the kind's fields
// (message.go). Five kinds:
//
//   - map: what the sender holds of a root's DAG — Complete, or
//     segments — whether it fetches the root (Interested), and whether it
//     asks for the receiver's map in return (Ask). Sent once per root and
//     peer when a fetch starts or a peer connects during one, and as the
//     reply to an Ask.
//   - have: blocks of a root the sender has verified since its map, sent
//     only to peers that fetch the root, batched per peer (Config.
//     BatchDelay, BatchMax): one message carries every HAVE of 50 ms, so a
//     1 MiB block costs its 36-byte CID per interested peer, not a message.
//   - interest: the sender starts or stops fetching a root (no more HAVEs
//     to it for that root when it stops).
//   - choke: the sender chokes or unchokes the receiver (all roots). The
//     block server decides (Choker); the fetcher then asks a choking peer
//     for nothing, and moves what it had asked elsewhere.
//   - peers: peer exchange — up to MaxExchange peers that fetch or hold a
//     root, with their addresses, sent to a peer that says it fetches the
//     root; the receiver dials them and adds them to its fetch.
//
// A frame of an unknown kind is skipped (a newer peer may send one); any
// other malformed frame ends the stream. Every count and length is
// bounded before it is allocated (FuzzDecode).
//
// # Walk order and segments
//
// The DAG's walk order is depth-first pre-order from the root, links in
// link order, each block at its first visit — the order content walks a
// DAG and the fetch scheduler's file order. A flat bitfield over that
// order would be useless to a leecher that has not yet seen the interior
// blocks: it could not tell which index is which block. So a map is cut
// into segments, one per interior block the sender holds, listed in walk
// order: (parent CID, one bit per link of the parent, bit i = byte i/8,
// mask 1<<(i%8)). A receiver that holds the parent maps bits to CIDs at
// once; one that does not yet keeps the segment until the parent
// arrives (the scheduler bounds what it keeps). The whole map of a
// seeder is one flag; a 16 MiB file's map (one root, 16 leaves) is one
// 38-byte segment; a 1 GiB file's is 1+1024 bits per interior block.
//
// # Why block bytes stay on Bitswap
//
// Blocks keep moving as Bitswap blocks, requested with want-block, for
// three reasons. One code path verifies, stores and accounts every block
// whoever sent it (protocol's client), so a mixed swarm of shoal and
// Kubo peers is fetched by one scheduler with one set of windows, bans
// and endgame. The server's queues, rate limit and choking apply to one
// kind of request. And what the extension removes is the probing, not
// the transfer: with maps, a want-block goes only to a peer known to
// hold the block, so the Bitswap framing (a few dozen bytes per 1 MiB
// block) is all that remains to save, under 0.01 % of the wire bytes —
// not worth a second block transport.
//
// # Files
//
//   - message.go: the wire format and its limits.
//   - service.go: the Service on a libp2p host — peers, the interfaces it
//     needs (Local, Events, Choker), what it does with each message.
//   - peer.go: one peer's queues and sender goroutine, the HAVE batches.
//   - view.go: what peers said (maps, HAVEs, interest, chokes), bounded
//     per peer, for the dashboard (View, ChokesUs).
//
// The package imports no other shoal package: node plugs Local, Events
// and Choker into the blockstore, protocol's client and server.
package swarm
