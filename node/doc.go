// Package node assembles one running shoal node from its parts — the
// libp2p host, the DHT, the blockstore and the block-exchange protocol —
// and owns its configuration and lifecycle. It holds no protocol logic:
// UnixFS (chunking, kinds, sizes, tar import) is content's, block exchange
// and the fetch scheduler are protocol's, routing is dht's, and running
// fetches for users (joining, the no-progress timeout, announcing while
// fetching, read-ahead of streamed files) is transfer's. node builds each part from its Config, plugs
// each part's small interfaces into the others, starts them in order and
// closes them in reverse (syncthing's lib/syncthing is the model).
//
// What node itself owns:
//   - the Config: config.toml, flags, validation (config.go), sizes as
//     people write them (size.go);
//   - the node key, the libp2p host and its listen addresses (host.go);
//   - the catalogue of roots this node holds, with their names, in
//     roots.json (roots.go), and repo verification against it (verify.go);
//   - the error contract callers map to HTTP statuses and exit codes:
//     ErrNotFound, ErrNoProvider, ErrStore, … (errors.go);
//   - the public API web and cmd/shoal call (ops.go, fetch.go); what it
//     reports is in package api's types, under node's names (types.go:
//     aliases, so web sends what node returns without converting).
//
// Files:
//   - node.go: Node, New/NewWithParts (build and plug the parts), Start,
//     Close.
//   - ops.go: share (AddFile, AddTar), read (Resolve, List, Kind, Block),
//     roots (Roots, Pin, Unpin, GC), Info, Peers, Connect.
//   - fetch.go: the protocol client's store adapter, Fetch/FetchWith and
//     the transfer list (delegating to transfer.Registry), what a finished
//     fetch means here (pin, catalogue, provide), Open (with
//     transfer.ReadAhead, and the content reader's read-ahead of the next
//     few blocks; File.Expect narrows both to a Range's bytes).
//   - readsession.go: read sessions — one per root read without a
//     whole-DAG fetch (a Range, ?format=raw or car, a path walk, an API
//     cat): the root's providers looked up once and given to the
//     provider search of every block the read fetches (readSessions is
//     the client's Providers), and each block a reader waits for handed
//     to it as it is stored (clientStore.Get), not read back; the
//     request's root travels in the context (WithReadRoot).
//   - swarm.go: the swarm extension's wiring — swarm.Service on the host
//     (network.swarm_extension), its Local (this node's map of a root,
//     walked from the blockstore), its Events (maps, HAVE deltas, chokes
//     into the protocol client; peers learned by exchange into
//     Client.AddProviders), the server as its Choker when the server has
//     the methods, and the client's OnFetching/OnVerified/OnInterest hooks feeding
//     it.
//   - swarm_view.go: Swarm, the dashboard's swarm view — each running
//     transfer's and shared root's availability bar (walk order, from
//     the store and what swarm peers said), peers' choke and interest
//     flags, upload slots; read-only.
//   - cluster_view.go: Cluster, the IPFS Cluster peer's view of the pins
//     (cluster.rest_addr, through package ipfscluster), cached a few
//     seconds.
//   - writefile.go: WriteFile, the daemon writing a fetched file at its
//     offsets as leaves arrive (fetch -o); seedfile.go: the file as the
//     seed — each leaf it takes becomes a blockstore reference into it
//     (never a store copy), checkpointed after fsyncs, moved to the final
//     name by FilePlaced; AddFileNoCopy (share --no-copy); fdname_*.go:
//     an open file's current name (/proc/self/fd).
//   - config.go, size.go, host.go, roots.go, verify.go, errors.go,
//     types.go: as listed above.
//
// It may import api, blockstore, content, dht, protocol, swarm, transfer
// and internal/httpguard (the loopback test of API addresses); nothing
// imports node but web, kuborpc, sim and cmd/shoal.
//
// Share and fetch through the packages:
//
//	share:  bytes/tar ──► content.ImportFile / ImportTar ──► blocks ──► blockstore
//	                         (chunk, hash, link)                 │
//	        root CID ◄─────────────────────────────────────────────┘
//	          └─► blockstore.Pin ─► roots.json ─► dht.Provide ─► caller
//
//	fetch:  CID ─► transfer.Registry.Start (one per root; watches progress)
//	          └─► protocol.Client.FetchWith ◄─ providers ── readSessions ── dht.FindProviders
//	                │  (scheduler: windows, rarest first, verify each block)
//	                ▼
//	              blockstore.PutVerified ─► protocol.Server.NotifyNewBlocks
//	                │   (a leaf of a file WriteFile writes: into the file,
//	                │   and blockstore.PutRefs instead of a copy)
//	                │   (first verified blocks: transfer asks dht.Provide)
//	                ▼
//	        done ─► node: Pin if asked ─► roots.json ─► dht.Provide
//
//	read:   Open/List/Resolve ─► read session of the request's root
//	        ─► content reader ─► protocol.Client.Get (store first, swarm
//	        for what is missing, its provider search answered by the
//	        session's one lookup; up to 4 blocks read ahead; a block
//	        received for a waiting reader handed to it from memory); a
//	        read from the start of a file not held whole starts a Fetch
//	        of its DAG, unless File.Expect said a Range.
package node
