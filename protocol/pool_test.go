package protocol

import (
	"runtime"
	"sync"
	"testing"
)

// TestBufPool: buffers come back empty with the pool's capacity; up to
// keep free ones are kept through garbage collections and handed out
// again (the last put first), from any goroutine; a buffer of another
// size is refused.
func TestBufPool(t *testing.T) {
	p := newBufPool(64, 2)
	a, b, c := p.get(), p.get(), p.get()
	for _, x := range []*[]byte{a, b, c} {
		if len(*x) != 0 || cap(*x) != 64 {
			t.Fatalf("got a buffer of len %d cap %d", len(*x), cap(*x))
		}
	}
	*a = append(*a, "stale"...)
	p.put(a)
	p.put(b)
	p.put(c) // over keep: into the sync.Pool, which a collection may empty
	if len(p.free) != 2 {
		t.Fatalf("%d buffers kept, want 2", len(p.free))
	}
	runtime.GC()
	runtime.GC() // a sync.Pool alone would now be empty
	var wg sync.WaitGroup
	got := make(chan *[]byte, 2)
	for range 2 {
		wg.Go(func() { got <- p.get() })
	}
	wg.Wait()
	close(got)
	back := map[*[]byte]bool{}
	for x := range got {
		if len(*x) != 0 {
			t.Fatalf("a reused buffer came back with %q in it", *x)
		}
		back[x] = true
	}
	if !back[a] || !back[b] {
		t.Fatal("the kept buffers were not the ones handed out next")
	}
	p.put(a)
	if x := p.get(); x != a {
		t.Fatal("the buffer put last was not the first handed out")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a buffer of another size was taken")
		}
	}()
	wrong := make([]byte, 0, 32)
	p.put(&wrong)
}
