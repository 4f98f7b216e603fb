package node

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/internal/p2ptest"
	"github.com/shoalnet/shoal/protocol"
)

// TestFetchSilentProviderOneSentence: the only peer takes every want and
// never answers. The transfer stays "searching" (the no-progress clock
// has not started: nobody has the content) and ends at its search timeout
// with one sentence naming the CID once, the silent peer, and what to do.
func TestFetchSilentProviderOneSentence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := bitswapPeer(t, func(s network.Stream) {
		r := bufio.NewReader(s)
		for {
			if _, err := protocol.ReadMessage(r); err != nil {
				_ = s.Reset()
				return
			}
		}
	})
	cfg := testConfig()
	cfg.Transfer.NoProgressTimeout = Duration{time.Second} // would fire first if it ran while searching
	b := startNode(t, cfg)
	if err := b.Connect(ctx, p2ptest.Addr(quiet)); err != nil {
		t.Fatal(err)
	}
	h, _ := mh.Sum([]byte("content the quiet peer never sends"), mh.SHA2_256, -1)
	want := cid.NewCidV1(cid.Raw, h)
	timeout := 3 * time.Second
	tr, err := b.FetchWith(ctx, want, FetchOptions{Source: "test", SearchTimeout: &timeout})
	if err != nil {
		t.Fatal(err)
	}
	if info := tr.Info(); info.Phase != PhaseSearching {
		t.Errorf("new transfer phase %q, want %q", info.Phase, PhaseSearching)
	}
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatal("the fetch did not end at its search timeout")
	}
	err = tr.Err()
	if !errors.Is(err, protocol.ErrNoProviders) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrNoProviders and DeadlineExceeded", err)
	}
	msg := err.Error()
	for _, part := range []string{"found in 3s", quiet.ID().String() + " accepted the request and never answered", "shoal connect"} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q lacks %q", msg, part)
		}
	}
	if n := strings.Count(msg, want.String()); n != 1 || strings.Contains(msg, "received nothing") {
		t.Errorf("error names the CID %d times (want 1), or is the no-progress one: %q", n, msg)
	}
}
