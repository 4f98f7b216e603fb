package protocol

import (
	"context"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestServerUploads: before the server starts (no choke round yet) a
// swarm peer is choked, interested when it said so or has want-blocks
// queued; a Bitswap peer with wants is interested and never choked; a
// peer that said it is interested before it negotiated the extension
// counts as interested.
func TestServerUploads(t *testing.T) {
	blks := seqBlocks(t, 3, 100)
	s := bsTestServer(t, DefaultServerConfig(), newMemStore(blks...), newChanSender())
	said, asked, kubo, early, idle := peer.ID("said"), peer.ID("asked"), peer.ID("kubo"), peer.ID("early"), peer.ID("idle")
	s.SetSwarmPeer(said, true)
	s.PeerInterested(said, true)
	s.SetSwarmPeer(asked, true)
	s.ReceiveMessage(context.Background(), asked, wantAll(blks))
	s.ReceiveMessage(context.Background(), kubo, wantAll(blks))
	s.PeerInterested(early, true)
	s.SetSwarmPeer(idle, true)
	got := fmt.Sprint(s.Uploads())
	want := fmt.Sprint(map[peer.ID]PeerUpload{
		said:  {Swarm: true, Choked: true, Interested: true},
		asked: {Swarm: true, Choked: true, Interested: true},
		kubo:  {Interested: true},
		early: {Interested: true},
		idle:  {Swarm: true, Choked: true},
	})
	if got != want {
		t.Fatalf("Uploads:\n%s\nwant\n%s", got, want)
	}
}
