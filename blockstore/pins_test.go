package blockstore

import (
	"context"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
)

// failingPins is a memory backend whose pin file cannot be written while
// fail is set (a full or read-only disk under the pins file).
type failingPins struct {
	*memBackend
	fail *bool
}

var errPinsWrite = errors.New("test: pins file not writable")

func (f failingPins) savePins(roots []cid.Cid) error {
	if *f.fail {
		return errPinsWrite
	}
	return f.memBackend.savePins(roots)
}

// TestPinSaveFailureUndone: when the pin roots cannot be saved, Pin and
// Unpin fail with the save's error and leave the roots and the pinned
// set as they were, so memory never claims a pin the disk lacks (or the
// reverse); a second Pin of a root and an Unpin of a non-root answer as
// before.
func TestPinSaveFailureUndone(t *testing.T) {
	ctx := context.Background()
	s := NewMemory(testConfig(t))
	defer s.Close()
	fail := true
	s.engine.be = failingPins{s.mem, &fail}
	d := newDAG("undo", 64)
	put(t, s, d.all()...)

	err := s.Pin(ctx, d.root.c)
	wantErr(t, err, errPinsWrite)
	if roots, _ := s.Pins(ctx); len(roots) != 0 {
		t.Fatalf("after a failed Pin the roots are %v, want none", roots)
	}
	if ok, _ := s.IsPinned(ctx, d.leaves[0].c); ok {
		t.Fatal("after a failed Pin a leaf of the DAG counts as pinned")
	}
	checkInvariants(t, s)
	wantErr(t, s.Unpin(ctx, d.root.c), ErrNotPinned)

	fail = false
	if err := s.Pin(ctx, d.root.c); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, d.root.c); err != nil {
		t.Fatalf("second Pin of a root: %v", err)
	}
	fail = true
	wantErr(t, s.Unpin(ctx, d.root.c), errPinsWrite)
	if roots, _ := s.Pins(ctx); len(roots) != 1 || !roots[0].Equals(d.root.c) {
		t.Fatalf("after a failed Unpin the roots are %v, want [%s]", roots, d.root.c)
	}
	for _, b := range d.all() {
		if ok, _ := s.IsPinned(ctx, b.c); !ok {
			t.Fatalf("after a failed Unpin %s is not pinned", b.c)
		}
	}
	checkInvariants(t, s)

	fail = false
	if err := s.Unpin(ctx, d.root.c); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.IsPinned(ctx, d.leaves[2].c); ok {
		t.Fatal("after Unpin a leaf still counts as pinned")
	}
	checkInvariants(t, s)
}
