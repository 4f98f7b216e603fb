package node

import (
	"slices"
	"testing"
	"time"
)

// TestFetchCounters: every finished transfer counts once, by result, with
// its duration in the bucket whose bound is the first at or above it;
// only completed fetches add bytes and blocks.
func TestFetchCounters(t *testing.T) {
	var c fetchCounters
	if s := c.snapshot(); s.Started != 0 || len(s.Durations.Counts) != len(FetchDurationBounds)+1 {
		t.Fatalf("zero counters = %+v", s)
	}
	t0 := time.Unix(100, 0)
	for range 3 {
		c.started()
	}
	c.finished(TransferInfo{State: TransferDone, Size: 1000, BytesReceived: 1100, DuplicateRatio: 1.1, Blocks: 4,
		Started: t0, Finished: t0.Add(10 * time.Millisecond)}) // on the first bound
	c.finished(TransferInfo{State: TransferFailed, Size: 500, Blocks: 2, Started: t0, Finished: t0.Add(20 * time.Millisecond)})
	c.finished(TransferInfo{State: TransferDone, Size: 10, Blocks: 1, BytesReceived: 10, DuplicateRatio: 1,
		Started: t0, Finished: t0.Add(time.Hour)}) // above every bound
	s := c.snapshot()
	if s.Started != 3 || s.Done != 2 || s.Failed != 1 || s.Bytes != 1010 || s.Blocks != 5 || s.BytesReceived != 1110 {
		t.Fatalf("counters = %+v", s)
	}
	if s.BytesUseful < 1009.99 || s.BytesUseful > 1010.01 {
		t.Errorf("useful bytes %v, want 1010", s.BytesUseful)
	}
	want := make([]uint64, len(FetchDurationBounds)+1)
	want[0], want[1], want[len(want)-1] = 1, 1, 1
	if !slices.Equal(s.Durations.Counts, want) || s.Durations.Count != 3 {
		t.Errorf("duration buckets %v (count %d), want %v", s.Durations.Counts, s.Durations.Count, want)
	}
	s.Durations.Counts[0] = 99
	if c.snapshot().Durations.Counts[0] != 1 {
		t.Error("a snapshot shares its counts with the counters")
	}
}
