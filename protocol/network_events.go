package protocol

import (
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// peerEvents queues "something changed for peer p" notices from libp2p's
// notifiee callbacks (which must not block) for the event loop, which looks
// at the real connection state and reports only transitions.
type peerEvents struct {
	mu        sync.Mutex
	queue     []peer.ID
	wake      chan struct{}
	done      bool
	connected map[peer.ID]struct{}
}

func newPeerEvents() *peerEvents {
	return &peerEvents{wake: make(chan struct{}, 1), connected: make(map[peer.ID]struct{})}
}

func (e *peerEvents) push(p peer.ID) {
	e.mu.Lock()
	if !e.done {
		e.queue = append(e.queue, p)
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *peerEvents) close() {
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// next returns the queued peers, blocking until there are some; ok is false
// once closed.
func (e *peerEvents) next() (batch []peer.ID, ok bool) {
	for {
		e.mu.Lock()
		if e.done {
			e.mu.Unlock()
			return nil, false
		}
		batch, e.queue = e.queue, nil
		e.mu.Unlock()
		if len(batch) > 0 {
			return batch, true
		}
		<-e.wake
	}
}

func (e *peerEvents) connectedPeers() []peer.ID {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps := make([]peer.ID, 0, len(e.connected))
	for p := range e.connected {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// setConnected records the state and reports whether it changed.
func (e *peerEvents) setConnected(p peer.ID, up bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, was := e.connected[p]
	if was == up {
		return false
	}
	if up {
		e.connected[p] = struct{}{}
	} else {
		delete(e.connected, p)
	}
	return true
}

// runPeerEvents turns connection notices into PeerConnected/PeerDisconnected
// calls. A peer counts as connected while it has a non-limited connection
// (relayed, limited connections cannot carry Bitswap traffic).
func (n *Network) runPeerEvents() {
	for {
		batch, ok := n.events.next()
		if !ok {
			return
		}
		for _, p := range batch {
			if p == n.h.ID() {
				continue
			}
			up := n.hasUsableConn(p)
			if !n.events.setConnected(p, up) {
				continue
			}
			if !up {
				n.peerDisconnected(p)
			}
			for _, l := range n.listeners {
				if up {
					l.PeerConnected(p)
				} else {
					l.PeerDisconnected(p)
				}
			}
		}
	}
}

func (n *Network) hasUsableConn(p peer.ID) bool {
	for _, c := range n.h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited && !c.IsClosed() {
			return true
		}
	}
	return false
}
