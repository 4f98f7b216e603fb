package protocol

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/peer"
)

// gatedRecorder records the messages it gets, in order, but holds the
// first call until gate is closed.
type gatedRecorder struct {
	gate    chan struct{}
	entered chan struct{}
	msgs    chan *Message
	first   bool
}

func (r *gatedRecorder) ReceiveMessage(_ context.Context, _ peer.ID, m *Message) {
	for i := range m.Blocks {
		m.Blocks[i].Data = bytes.Clone(m.Blocks[i].Data)
	}
	if !r.first {
		r.first = true
		close(r.entered)
		<-r.gate
	}
	r.msgs <- m
}

// TestNetworkReadsAheadOfDispatch: while a receiver still holds a stream's
// first frame, the network goes on reading the stream (here, the next
// 1 MiB block, four times the muxer's initial 256 KiB window, so the
// writes complete only if it is read), and once the receiver returns
// every message reaches it in the order it was sent, the small message
// after the blocks.
func TestNetworkReadsAheadOfDispatch(t *testing.T) {
	rec := &gatedRecorder{gate: make(chan struct{}), entered: make(chan struct{}), msgs: make(chan *Message, 16)}
	var open sync.Once
	release := func() { open.Do(func() { close(rec.gate) }) }
	s, _ := rawStreamTo(t, rec)
	t.Cleanup(release) // on failure too: Network.Close waits for the held receiver
	defer s.Close()
	var sent []*Message
	for i := range 2 {
		data := bytes.Repeat([]byte{byte(i + 1)}, 1<<20)
		sent = append(sent, &Message{Blocks: []Block{testBlock(t, data)}})
	}
	sent = append(sent, &Message{Presences: []Presence{{CID: rawCID(t, []byte("last")), Type: Have}}})

	wrote := make(chan error, 1)
	go func() {
		for _, m := range sent {
			if err := WriteMessage(s, m); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	bsExpect(t, rec.entered)
	if err := bsExpect(t, wrote); err != nil {
		t.Fatalf("writing while the receiver holds the first frame: %v", err)
	}
	release()
	for i, want := range sent {
		got := bsExpect(t, rec.msgs)
		if !messagesEqual(got, want) {
			t.Fatalf("message %d: got %d blocks %d presences, want message %d in order", i, len(got.Blocks), len(got.Presences), i)
		}
	}
}

// TestInboundBudget: a peer's frames waiting for dispatch take budget
// tokens; a reader that would exceed the budget waits, gives up (and
// returns what it took) when told to, and goes on once tokens return.
func TestInboundBudget(t *testing.T) {
	ip := newInboundPeer()
	if got := rxTokens(MaxMessageSize); got != cap(ip.budget) {
		t.Fatalf("a maximal frame takes %d tokens, want the whole budget (%d)", got, cap(ip.budget))
	}
	block := rxTokens(1<<20 + 100) // a 1 MiB block's frame
	if got := rxTokens(4 << 10); got != 0 {
		t.Fatalf("a small frame takes %d tokens, want 0", got)
	}
	n := 0
	never := make(chan struct{})
	for len(ip.budget)+block <= cap(ip.budget) {
		if !ip.acquire(block, never) {
			t.Fatal("acquire within budget failed")
		}
		n++
	}
	if n != rxBudget/(1<<20) {
		t.Fatalf("%d block frames fit the budget, want %d", n, rxBudget/(1<<20))
	}
	abort := make(chan struct{})
	close(abort)
	held := len(ip.budget)
	if ip.acquire(block, abort) {
		t.Fatal("acquire past the budget succeeded")
	}
	if len(ip.budget) != held {
		t.Fatalf("aborted acquire left %d tokens taken, want %d", len(ip.budget), held)
	}
	ip.release(block)
	if !ip.acquire(block, never) || len(ip.budget) != held {
		t.Fatalf("acquire after a release: %d of %d tokens taken, want %d", len(ip.budget), cap(ip.budget), held)
	}
}

// TestInboundBudgetTwoLargeFrames: two streams of one peer whose readers
// each want the whole budget (frames of MaxMessageSize) while a third
// holds half of it: once the third returns its half, both readers get the
// budget in turn. Taking tokens one at a time without the taking lock,
// the two split what was free and each waited for the other forever.
func TestInboundBudgetTwoLargeFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ip := newInboundPeer()
		never := make(chan struct{})
		half := cap(ip.budget) / 2
		if !ip.acquire(half, never) {
			t.Fatal("acquire of half the budget failed")
		}
		all := rxTokens(MaxMessageSize)
		var done sync.WaitGroup
		got := make(chan int, 2)
		for i := range 2 {
			done.Go(func() {
				if ip.acquire(all, never) {
					got <- i
					ip.release(all) // dispatched
				}
			})
		}
		synctest.Wait() // both readers wait: half the budget is held
		if len(got) != 0 {
			t.Fatal("a reader took the whole budget while half of it was held")
		}
		ip.release(half)
		done.Wait()
		if len(got) != 2 || len(ip.budget) != 0 {
			t.Fatalf("%d of 2 readers got the budget, %d tokens left taken", len(got), len(ip.budget))
		}
	})
}
