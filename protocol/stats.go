package protocol

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TrafficStats counts Bitswap traffic on the wire (length-prefixed frames),
// as seen by the Network.
type TrafficStats struct {
	MessagesSent     uint64
	MessagesReceived uint64
	BytesSent        uint64 // frame bytes written, prefix included
	BytesReceived    uint64 // message bytes read, prefix excluded
	// Blocks carried by received messages (wanted or not).
	BlocksReceived     uint64
	BlockBytesReceived uint64
}

func (t *TrafficStats) add(o TrafficStats) {
	t.MessagesSent += o.MessagesSent
	t.MessagesReceived += o.MessagesReceived
	t.BytesSent += o.BytesSent
	t.BytesReceived += o.BytesReceived
	t.BlocksReceived += o.BlocksReceived
	t.BlockBytesReceived += o.BlockBytesReceived
}

// trafficCounters keeps per-peer counters for connected peers and totals
// since start; a disconnected peer's counters are folded into the totals
// only, so memory follows the number of connected peers.
type trafficCounters struct {
	mu     sync.Mutex
	total  TrafficStats
	byPeer map[peer.ID]*TrafficStats
}

func newTrafficCounters() trafficCounters {
	return trafficCounters{byPeer: make(map[peer.ID]*TrafficStats)}
}

func (c *trafficCounters) peer(p peer.ID) *TrafficStats {
	s := c.byPeer[p]
	if s == nil {
		s = &TrafficStats{}
		c.byPeer[p] = s
	}
	return s
}

func (c *trafficCounters) sent(p peer.ID, n int) {
	d := TrafficStats{MessagesSent: 1, BytesSent: uint64(n)}
	c.mu.Lock()
	c.peer(p).add(d)
	c.total.add(d)
	c.mu.Unlock()
}

func (c *trafficCounters) received(p peer.ID, n int, m *Message) {
	d := TrafficStats{MessagesReceived: 1, BytesReceived: uint64(n), BlocksReceived: uint64(len(m.Blocks))}
	for _, b := range m.Blocks {
		d.BlockBytesReceived += uint64(len(b.Data))
	}
	c.mu.Lock()
	c.peer(p).add(d)
	c.total.add(d)
	c.mu.Unlock()
}

func (c *trafficCounters) forget(p peer.ID) {
	c.mu.Lock()
	delete(c.byPeer, p)
	c.mu.Unlock()
}

// Traffic returns the totals since the Network was created.
func (n *Network) Traffic() TrafficStats {
	n.traffic.mu.Lock()
	defer n.traffic.mu.Unlock()
	return n.traffic.total
}

// PeerTraffic returns per-peer counters for connected peers.
func (n *Network) PeerTraffic() map[peer.ID]TrafficStats {
	n.traffic.mu.Lock()
	defer n.traffic.mu.Unlock()
	out := make(map[peer.ID]TrafficStats, len(n.traffic.byPeer))
	for p, s := range n.traffic.byPeer {
		out[p] = *s
	}
	return out
}

// PeerStats is what the server did for one peer (or, from Server.Stats, for
// all peers together).
type PeerStats struct {
	WantsReceived   uint64 // want entries, cancels not included
	CancelsReceived uint64
	WantsRefused    uint64 // over MaxWantsPerPeer
	BlocksSent      uint64
	BlockBytesSent  uint64 // block data only
	HavesSent       uint64
	DontHavesSent   uint64
	MessagesSent    uint64
	BytesSent       uint64 // encoded messages, length prefix excluded
	SendErrors      uint64
	QueuedWants     int // wants held now (queued or waiting for the block)
}

func (s *PeerStats) add(o PeerStats) {
	s.WantsReceived += o.WantsReceived
	s.CancelsReceived += o.CancelsReceived
	s.WantsRefused += o.WantsRefused
	s.BlocksSent += o.BlocksSent
	s.BlockBytesSent += o.BlockBytesSent
	s.HavesSent += o.HavesSent
	s.DontHavesSent += o.DontHavesSent
	s.MessagesSent += o.MessagesSent
	s.BytesSent += o.BytesSent
	s.SendErrors += o.SendErrors
	s.QueuedWants += o.QueuedWants
}

// BlockBytesFrom returns the block bytes received from p while it has been
// connected (0 for a peer not connected): the server's tit-for-tat input
// (ServerConfig.ReceivedFrom). Blocks nobody asked for count too, but a peer
// that sends them is banned by the client, so they do not buy a slot.
func (n *Network) BlockBytesFrom(p peer.ID) uint64 {
	n.traffic.mu.Lock()
	defer n.traffic.mu.Unlock()
	if s := n.traffic.byPeer[p]; s != nil {
		return s.BlockBytesReceived
	}
	return 0
}
