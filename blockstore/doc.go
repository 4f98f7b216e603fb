// Package blockstore owns durable, content-addressed block storage for a
// shoal node: put/get/has/delete of blocks, recursive pins of roots,
// garbage collection of what no pin reaches, a capacity limit with LRU
// eviction of unpinned blocks, and crash safety (a block is wholly present
// or absent after a kill at any moment).
//
// Two implementations share one engine and one test suite: Disk (Open),
// the store a node runs, and Memory (NewMemory), for tests and the
// simulator. Both satisfy Store.
//
// # Semantics
//
// Keys are multihashes, as in Kubo: a block put under a CIDv1 raw CID is
// found by a CIDv0 or a dag-pb CIDv1 with the same multihash. AllKeys
// therefore yields CIDv1 raw CIDs. Put verifies the bytes against the
// CID's multihash (sha2-256 on a fast path, anything go-multihash computes
// otherwise) and refuses a mismatch with ErrHashMismatch. Identity CIDs
// hold their bytes inline and are answered from the CID, never stored.
// GetInto (Disk and Memory, beside Store) is Get into a buffer the
// caller reuses — the block exchange's server reads the blocks it sends
// into a pool — with the same checks and no fresh buffer per block.
//
// A pin is a root CID; the blocks it reaches through Config.Links are
// pinned. A pin is recorded even when its DAG is incomplete: every
// missing block under it is protected the moment it is stored, so a
// pinned fetch into a full cache never evicts its own blocks. PinStatus
// and Verify say what is still missing. Pinned blocks are never evicted
// and cannot be Deleted (ErrPinned); GC removes every unpinned block.
//
// A reference (PutRefs, refs.go) is a raw block the store does not hold
// itself: a range of a file elsewhere — a file `shoal fetch -o` wrote or
// one shared with --no-copy — so the file is the seed. References are
// entries like blocks for Has, GetSize, pins and GC (GC drops the
// unpinned ones), take no capacity and are never evicted. Every read of
// one is hashed, whatever VerifyOnRead says: a file that was moved,
// truncated or edited makes the block missing (ErrNotFound, and Verify's
// RefsGone), never wrong.
//
// With CapacityBytes set, a Put that would exceed it evicts the least
// recently used (by Get or Put) unpinned blocks; if pinned bytes leave no
// room it fails with ErrFull. Counters (Stat) are kept incrementally; the
// only scan is Disk's index build at Open. After a restart the LRU order
// is the files' write order.
//
// # Files
//
//	store.go   Store, Config, errors, result types, hash checking
//	engine.go  the shared index: accounting, LRU, per-key serialization,
//	           Put/Get/Has/GetSize/Delete/AllKeys/Stat/Close
//	pins.go    the pinned set (incremental walk), Pin/Unpin/PinStatus/GC
//	pinwalk.go reading the links a pin walk needs before it takes the lock
//	verify.go  Verify
//	refs.go    references: PutRefs, ReleaseFile, reading and checking them
//	refslog.go Disk's append-only log of references
//	disk.go    Disk: file per block in sharded directories, pins file,
//	           the startup scan
//	recover.go after an unclean shutdown, rehash recently written blocks
//	memory.go  Memory
//	lock_*.go  the flock that keeps a second process out of a store
//
// # Locking
//
// One mutex guards the index; no backend call (a file read, write,
// fsync, rename or unlink) is made while it is held, so a slow disk
// read of one block never delays Has or Get of another. Operations on
// one key are serialized by marking it in flight; block bytes are
// written, then published in the index. The pin walks read the blocks
// whose links they need first, without the lock (pinwalk.go); the pin
// roots are saved under a second mutex that only root changes and GC
// take, then published.
//
// Why one file per block rather than an embedded key-value engine, with
// measurements, is in bench/blockstore.md.
//
// It imports no other shoal package.
package blockstore
