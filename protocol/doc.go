// Package protocol owns block exchange: the Bitswap 1.2.0 wire format, the
// server (per-peer ledgers, fair queueing, limits) and the client (a
// multi-peer fetch scheduler with peer scoring).
//
// Peers speak /ipfs/bitswap/1.2.0 (and 1.1.0, 1.0.0, /ipfs/bitswap), so
// Kubo and Helia nodes interoperate; the client's scheduling is shoal's
// own: many blocks in flight across every peer, per-peer windows sized
// from each peer's measured rate × latency, rarest first, duplicates only
// in the endgame, and every block verified against its CID before it is
// stored.
//
// Files:
//   - message.go, message_decode.go, message_io.go: the wire format
//     (hand-encoded protobuf, length-delimited frames, size limits).
//   - network.go, network_events.go, network_sender.go: streams on a
//     libp2p host, dispatch of received messages to the server and the
//     client, per-peer send queues, traffic counters (stats.go).
//   - server.go, server_batch.go, ledger.go, ratelimit.go: answering wants
//     with bounded per-peer ledgers, round-robin across peers, batched
//     responses and a node-wide upload limit; server_buf.go: the pooled
//     buffers the server reads large blocks into (BlockstoreInto).
//   - choke.go, choker.go, origin.go: upload slots for swarm peers (peers
//     that negotiated the shoal swarm extension): the choke decision, a
//     pure function (tit-for-tat among leechers, seeding rank, optimistic
//     unchoke), the choker loop that feeds and applies it, and origin mode
//     (least-sent blocks first, credit for passing blocks on). Other
//     peers are never choked and keep their round-robin turn.
//     choke_view.go: Uploads, each peer's upload state read for the
//     dashboard (it changes no decision).
//   - scheduler*.go, window.go, peerscore.go, fetch_error.go: the fetch
//     scheduler, a deterministic state machine without I/O (which block to
//     ask which peer, window sizes, stalls, endgame, failure), and the
//     node-lifetime peer score table.
//   - client.go, client_peer.go, fetch.go: the Client that runs schedulers
//     against the network: verification, storage, progress, Get for
//     streaming readers; observe.go: the want list (blocks in flight).
//   - scheduler_swarm.go, client_swarm.go: what shoal's swarm extension
//     (package swarm, wired by node) tells a fetch — a peer's availability
//     map and HAVE deltas, that it chokes us — and the client's hooks
//     back (OnFetching, OnVerified, and OnInterest: the fetch is
//     interested in a swarm peer while its map and HAVEs name a block not
//     yet here, Scheduler.Interest), peer-exchange dials (AddProviders)
//     and its want counters (WantCounts). A swarm peer is never probed
//     with want-have and is asked want-block only for what its map names;
//     a peer that chokes us is asked nothing.
//
// Buffers: received frames live in pooled buffers (message_io.go,
// rxFrame). Each inbound stream has a read loop and a dispatcher that
// decodes and hands frames to the receivers in order, so reading runs
// ahead of verification within a per-peer budget (network.go,
// inboundPeer); a buffer is reused once the receivers have returned, so
// a received block's bytes are valid only during ReceiveMessage; the
// client hands them to its Blocks store, which copies or writes them out
// and keeps no reference (Receiver, Blocks). Encoding buffers for Send are
// pooled too (network_sender.go), and so are the buffers the server reads
// the blocks it sends into, given back once their Send has returned
// (server_buf.go). A block is hashed once between the wire
// and the store: the decoder derives its CID from its bytes, and the
// client stores it with PutVerified.
//
// It imports no other shoal package; it declares the small interfaces it
// needs: Blockstore (server; BlockstoreInto optional), Blocks, Providers and
// ClientNetwork (client).
package protocol
