package protocol

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
)

// peerSender owns the long-lived outbound stream to one peer.
type peerSender struct {
	n *Network
	p peer.ID

	// sendMu serializes whole sends (open, write, retry). It is a one-slot
	// channel rather than a mutex so a send waiting its turn can give up
	// when its context ends, and so that waiting counts as durably
	// blocked under testing/synctest (the simulator's virtual time stops
	// moving while any goroutine waits on a sync.Mutex).
	sendMu chan struct{}

	mu     sync.Mutex // guards stream and closed
	stream network.Stream
	closed bool
}

func (s *peerSender) send(ctx context.Context, m *Message) error {
	select {
	case s.sendMu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sendMu }()
	var lastErr error
	for attempt := range 2 {
		st, err := s.open(ctx)
		if err != nil {
			return err
		}
		v0 := isV0(st.Protocol())
		size, err := m.frameSize(v0)
		if err != nil {
			return fmt.Errorf("protocol: sending to %s: %w", s.p, err)
		}
		n, err := s.write(ctx, st, m, v0, size)
		if err == nil {
			s.n.traffic.sent(s.p, n)
			return nil
		}
		lastErr = err
		s.drop(st)
		s.n.log.Debug("bitswap: write failed", "peer", s.p, "attempt", attempt, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("protocol: sending to %s: %w", s.p, lastErr)
}

// open returns the current stream or opens a new one.
func (s *peerSender) open(ctx context.Context) (network.Stream, error) {
	s.mu.Lock()
	st, closed := s.stream, s.closed
	s.mu.Unlock()
	if closed {
		return nil, errSenderGone
	}
	if st != nil {
		return st, nil
	}
	octx, cancel := context.WithTimeout(ctx, s.n.cfg.NewStreamTimeout)
	defer cancel()
	st, err := s.n.h.NewStream(octx, s.p, bitswapProtocols...)
	if err != nil {
		return nil, fmt.Errorf("protocol: opening bitswap stream to %s: %w", s.p, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = st.Reset()
		return nil, errSenderGone
	}
	s.stream = st
	return st, nil
}

// write writes m's frame (of size bytes without its prefix) with a
// deadline, in pieces (writeFrame: large block data goes from the block to
// the stream without a copy of ours); canceling ctx resets the stream so
// the write returns at once (a half-written frame poisons the stream). It
// returns the bytes written.
func (s *peerSender) write(ctx context.Context, st network.Stream, m *Message, v0 bool, size int) (int, error) {
	deadline := time.Now().Add(s.n.sendTimeout(size))
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = st.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	n, err := m.writeSizedFrame(st, v0, size)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	return n, err
}

// drop resets st and forgets it, if it is still the current stream.
func (s *peerSender) drop(st network.Stream) {
	_ = st.Reset()
	s.mu.Lock()
	if s.stream == st {
		s.stream = nil
	}
	s.mu.Unlock()
}

func (s *peerSender) protocol() (libp2pproto.ID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		return "", false
	}
	return s.stream.Protocol(), true
}

// idle reports whether the sender has no open stream.
func (s *peerSender) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream == nil
}

// close resets the stream; later sends on this sender fail with errSenderGone.
func (s *peerSender) close() {
	s.mu.Lock()
	st := s.stream
	s.stream, s.closed = nil, true
	s.mu.Unlock()
	if st != nil {
		_ = st.Reset()
	}
}

func isV0(p libp2pproto.ID) bool {
	return p == ProtocolBitswapOneZero || p == ProtocolBitswapNoVers
}
