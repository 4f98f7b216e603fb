package blockstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Sentinel errors. Every error the store returns wraps one of these (or a
// context error, or an I/O error from the operating system) and names the
// CID it concerns.
var (
	// ErrNotFound: the block is not in the store.
	ErrNotFound = errors.New("blockstore: block not found")
	// ErrHashMismatch: Put was given bytes whose hash is not the CID's.
	ErrHashMismatch = errors.New("blockstore: bytes do not match CID")
	// ErrUnsupportedHash: the CID uses a multihash function that
	// go-multihash cannot compute, so its bytes cannot be verified.
	ErrUnsupportedHash = errors.New("blockstore: unsupported multihash function")
	// ErrFull: a Put cannot fit even after evicting every unpinned block.
	ErrFull = errors.New("blockstore: full")
	// ErrPinned: Delete of a block that a pin reaches.
	ErrPinned = errors.New("blockstore: block is pinned")
	// ErrNotPinned: Unpin of a CID that is not a pin root.
	ErrNotPinned = errors.New("blockstore: not pinned")
	// ErrCorrupt: a stored block no longer hashes to its key (VerifyOnRead).
	ErrCorrupt = errors.New("blockstore: stored block is corrupt")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("blockstore: closed")
	// ErrInUse: Open found the directory locked by another process; the
	// error is an *InUseError naming it.
	ErrInUse = errors.New("blockstore: in use by another process")
)

// InUseError is what Open returns when another process holds the store's
// lock: two processes writing one store would corrupt its index.
type InUseError struct {
	Dir string
	PID int // the holder's process id; 0 if it could not be read
}

func (e *InUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("blockstore: %s is in use by process %d", e.Dir, e.PID)
	}
	return fmt.Sprintf("blockstore: %s is in use by another process", e.Dir)
}

// Is makes errors.Is(err, ErrInUse) true for an *InUseError.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// LinkFunc returns the CIDs a block links to. The node passes
// content.Links; the store uses it only to walk pinned DAGs. It is never
// called for raw (0x55) blocks, which have no links by definition.
type LinkFunc func(c cid.Cid, data []byte) ([]cid.Cid, error)

// Config configures a store. Memory ignores Dir and Sync.
type Config struct {
	// Dir holds the on-disk store (created if missing).
	Dir string
	// CapacityBytes bounds the bytes of block data kept; 0 means unlimited.
	// When a Put would exceed it, least-recently-used unpinned blocks are
	// evicted.
	CapacityBytes int64
	// Sync fsyncs each block file and its directory before Put returns, so
	// a block survives power loss once Put has returned. Without it a block
	// survives a process kill (rename is atomic); after a power cut, Open
	// rehashes the blocks written in the last minute before it and drops
	// the damaged ones.
	Sync bool
	// VerifyOnRead rehashes every block Get returns. A block that fails is
	// removed and Get returns ErrCorrupt.
	VerifyOnRead bool
	// Links walks DAGs for pins. nil means every block is a leaf, so a pin
	// protects only its root block.
	Links LinkFunc
	// Logger receives warnings (unreadable files, corrupt blocks). nil
	// discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration shoal uses for a store in dir:
// unlimited capacity, no fsync per block and no hash check on read.
// Blocks are re-fetchable by CID and every peer verifies what it
// receives; rename keeps blocks whole across a process kill, and after a
// power cut Open rehashes the recently written blocks (see recover.go).
// Fsync per block costs several times the Put on small blocks, and
// hashing on read adds a SHA-256 to every Get (bench/blockstore.md).
func DefaultConfig(dir string) Config {
	return Config{Dir: dir}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.CapacityBytes < 0 {
		return fmt.Errorf("blockstore: CapacityBytes is %d; use 0 for unlimited or a positive byte count", c.CapacityBytes)
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Store is what both Disk and Memory provide. Blocks are keyed by
// multihash, as Kubo keys them: a block put under one CID is found by any
// CID with the same multihash, whatever its version or codec. Identity
// CIDs carry their bytes inline: Put checks and ignores them, Get, Has
// and GetSize answer from the CID, and they are never listed or counted.
type Store interface {
	// Put stores data under c after checking that data hashes to c's
	// multihash. Putting a block already present only marks it used.
	// The store never keeps data: it is written out (Disk) or copied
	// (Memory) before Put returns, so the caller may reuse the buffer at
	// once (the block exchange's and the importer's buffers are pooled).
	Put(ctx context.Context, c cid.Cid, data []byte) error
	// PutVerified is Put without the hash check, for a caller that has
	// just hashed data to c itself (the block exchange derives each
	// received block's CID from its bytes; the importer computes each
	// block's CID): hashing twice costs as much as writing. Bytes that do
	// not match c break the store's guarantee; Verify finds them. Like
	// Put, it does not keep data.
	PutVerified(ctx context.Context, c cid.Cid, data []byte) error
	// Get returns the block's bytes in a buffer of the caller's own (the
	// store keeps no reference to it); ErrNotFound if absent. With
	// VerifyOnRead it hashes them first: what a node serves to peers is
	// checked on every read.
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
	// Has reports presence from the in-memory index; it reads nothing.
	Has(ctx context.Context, c cid.Cid) (bool, error)
	// GetSize returns the block's length from the index; ErrNotFound if absent.
	GetSize(ctx context.Context, c cid.Cid) (int, error)
	// Delete removes a block; ErrNotFound if absent, ErrPinned if a pin
	// reaches it.
	Delete(ctx context.Context, c cid.Cid) error
	// AllKeys yields a snapshot of the stored blocks as CIDv1 raw CIDs (the
	// store keeps multihashes, not codecs). It yields one error and stops
	// if ctx ends or the store is closed.
	AllKeys(ctx context.Context) iter.Seq2[cid.Cid, error]

	// Pin records root as a recursive pin and persists it. The root need
	// not be stored: blocks under it that are missing are protected as
	// soon as they arrive, and PinStatus counts what is still missing.
	Pin(ctx context.Context, root cid.Cid) error
	// Unpin removes a pin root; ErrNotPinned if it is not one.
	Unpin(ctx context.Context, root cid.Cid) error
	// Pins lists the pin roots.
	Pins(ctx context.Context) ([]cid.Cid, error)
	// IsPinned reports whether c is a pin root or under one (stored or not).
	IsPinned(ctx context.Context, c cid.Cid) (bool, error)
	// PinStatus walks the DAG under root over the stored blocks.
	PinStatus(ctx context.Context, root cid.Cid) (PinStatus, error)
	// GC removes every block and reference no pin reaches.
	GC(ctx context.Context) (GCResult, error)

	// PutRefs records blocks kept outside the store: each Ref names a
	// raw block's bytes as a range of a file (see Ref). A reference is
	// served like a block, hashed on every read; a file that no longer
	// holds the bytes makes the block missing, never wrong. A block the
	// store holds itself is replaced by the reference (its copy is
	// removed).
	PutRefs(ctx context.Context, refs []Ref) error
	// ReleaseFile ends the references read through f (Ref.File): those
	// with a Path are read from the path from now on, the others are
	// dropped. Call it before closing f.
	ReleaseFile(f io.ReaderAt)

	// Stat returns counters kept incrementally; it scans nothing.
	Stat() Stats
	// Verify rehashes every stored block, removes the corrupt ones and
	// reports them along with the completeness of every pin.
	Verify(ctx context.Context) (VerifyReport, error)
	// Close waits for operations in progress and releases the store.
	// It is safe to call more than once.
	Close() error
}

// Stats are the store's counters.
type Stats struct {
	Blocks        int   // blocks stored, references included
	Refs          int   // of those, references to ranges of files (no bytes in the store)
	RefBytes      int64 // the bytes those references name
	Bytes         int64 // bytes of block data stored in the store (and being written); references take none
	CapacityBytes int64 // 0 = unlimited
	Pinned        int   // stored blocks a pin reaches
	PinnedBytes   int64
	Pins          int   // pin roots
	Missing       int   // blocks under pins that are not stored
	Evicted       int64 // blocks evicted to make room, since open
	EvictedBytes  int64
}

// GCResult says what GC did.
type GCResult struct {
	Removed      int // blocks and references removed
	RemovedRefs  int // of those, references
	RemovedBytes int64
	Kept         int // pinned blocks left
}

// PinStatus describes the DAG under one root as stored now.
type PinStatus struct {
	Root     cid.Cid
	Pinned   bool  // root is a pin root
	Blocks   int   // stored blocks under root (root included)
	Bytes    int64 // their bytes
	Missing  int   // blocks linked under root that are not stored
	Complete bool  // Missing == 0
	// FirstMissing holds up to 16 of the missing CIDs, to fetch them.
	FirstMissing []cid.Cid
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Checked int   // blocks rehashed
	Bytes   int64 // bytes rehashed
	// Corrupt blocks did not hash to their key; Verify removed them (a
	// pin that needs them shows them as missing, to be fetched again).
	Corrupt []cid.Cid
	// Vanished blocks were in the index but their data was gone.
	Vanished []cid.Cid
	// RefsGone are references whose file no longer holds the block (it
	// was moved, truncated or edited); Verify dropped them, so they count
	// as missing and are fetched again. The store itself is not damaged.
	RefsGone []cid.Cid
	// Pins is the status of every pin root after the check.
	Pins []PinStatus
}

// Incomplete returns the pins whose DAG is missing blocks.
func (r VerifyReport) Incomplete() []PinStatus {
	var out []PinStatus
	for _, p := range r.Pins {
		if !p.Complete {
			out = append(out, p)
		}
	}
	return out
}

// sha256Prefix is the multihash header of a 32-byte sha2-256 digest.
var sha256Prefix = []byte{mh.SHA2_256, 32}

// blockHashes counts checkHash calls, so tests can tell which paths hash
// (Put, Get with VerifyOnRead, Verify) and which do not (PutVerified).
var blockHashes atomic.Uint64

// checkHash verifies data against the multihash bytes h.
func checkHash(h []byte, data []byte) error {
	blockHashes.Add(1)
	if len(h) == 34 && bytes.Equal(h[:2], sha256Prefix) {
		sum := sha256.Sum256(data)
		if !bytes.Equal(sum[:], h[2:]) {
			return ErrHashMismatch
		}
		return nil
	}
	dec, err := mh.Decode(h)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedHash, err)
	}
	got, err := mh.Sum(data, dec.Code, dec.Length)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnsupportedHash, mh.Codes[dec.Code], err)
	}
	if !bytes.Equal(got, h) {
		return ErrHashMismatch
	}
	return nil
}

// verifyBlock checks data against c and names c in the error.
func verifyBlock(c cid.Cid, data []byte) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrHashMismatch)
	}
	if err := checkHash(c.Hash(), data); err != nil {
		if errors.Is(err, ErrHashMismatch) {
			return fmt.Errorf("%w: %d bytes given for %s; the sender sent the wrong block", ErrHashMismatch, len(data), c)
		}
		return fmt.Errorf("cannot verify %s: %w", c, err)
	}
	return nil
}

// keyCid turns a multihash key back into the CID AllKeys yields.
func keyCid(key string) cid.Cid {
	return cid.NewCidV1(cid.Raw, mh.Multihash(key))
}

// isIdentity reports an identity multihash, whose data is inline in the
// CID: such blocks are never stored, never missing, and read from the CID
// itself (as Kubo's idstore does).
func isIdentity(c cid.Cid) bool {
	h := c.Hash()
	return len(h) > 0 && h[0] == mh.IDENTITY
}

// identityData returns the inline bytes of an identity CID.
func identityData(c cid.Cid) ([]byte, bool) {
	if !c.Defined() || !isIdentity(c) {
		return nil, false
	}
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return nil, false
	}
	return append([]byte(nil), dec.Digest...), true
}
