package protocol

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The provider search of a fetch. While no peer has shown it holds any of
// the DAG (sent a block, or said HAVE), the fetch is "searching": it asks
// the DHT again and again, with a backoff between lookups (asking connected peers again each time), and takes every
// peer that connects meanwhile. It never fails for lack of a source in that
// phase; it fails with a *NoProvidersError when FetchOptions.SearchTimeout
// passes first. Once some peer has the content, the search ends after the
// lookup running then, and the scheduler fails a block no remaining peer
// can supply, as before.

// ErrNoProviders means a fetch found no peer that has its content before its
// search timeout. It comes inside a *NoProvidersError, which also matches
// context.DeadlineExceeded.
var ErrNoProviders = errors.New("protocol: no provider found")

// errSilent is the reason given for a connected peer that never answered.
var errSilent = errors.New("accepted the request and never answered")

// FetchOptions tune one fetch.
type FetchOptions struct {
	// SearchTimeout bounds the search for a peer that has the content;
	// 0 searches until the fetch is cancelled.
	SearchTimeout time.Duration
}

// NoProvidersError reports a fetch whose search timed out with no peer
// holding any of the content. Peers lists the peers that were asked and why
// none served.
type NoProvidersError struct {
	Root     cid.Cid
	Searched time.Duration
	Lookups  int // DHT lookups made
	Found    int // distinct providers the lookups returned
	Peers    []PeerError
}

func (e *NoProvidersError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "protocol: no provider of %s found in %s (%s, %s found)", e.Root, e.Searched.Round(time.Second),
		countNoun(e.Lookups, "DHT lookup"), countNoun(e.Found, "provider"))
	if len(e.Peers) > 0 {
		fmt.Fprintf(&b, "; asked %s:", countNoun(len(e.Peers), "peer"))
		for i, p := range e.Peers {
			if i == 8 {
				fmt.Fprintf(&b, " … %d more", len(e.Peers)-i)
				break
			}
			reason := p.Err.Error()
			if errors.Is(p.Err, ErrDontHave) {
				reason = "does not have it"
			}
			sep := ","
			if i == len(e.Peers)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, " %s %s%s", p.Peer, reason, sep)
		}
	}
	return b.String()
}

// Silent reports whether some asked peer never answered (a provider that
// takes requests and sends nothing).
func (e *NoProvidersError) Silent() bool {
	for _, p := range e.Peers {
		if errors.Is(p.Err, errSilent) {
			return true
		}
	}
	return false
}

// Unwrap returns ErrNoProviders, context.DeadlineExceeded (the search ran out
// of time) and one *PeerError per peer asked.
func (e *NoProvidersError) Unwrap() []error {
	errs := []error{ErrNoProviders, context.DeadlineExceeded}
	for i := range e.Peers {
		errs = append(errs, &e.Peers[i])
	}
	return errs
}

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Sourced reports whether some peer has shown it holds part of the DAG (sent
// a block or said HAVE), or the DAG is complete.
func (s *Scheduler) Sourced() bool {
	if s.done {
		return true
	}
	for _, p := range s.all {
		if p.partial || p.claimsRoot || p.complete {
			return true
		}
	}
	return false
}

// reaskRoot forgets every active peer's DONT_HAVE for the root, so each is
// asked again: while a fetch searches, a connected peer may get the
// content (it is fetching or sharing it meanwhile).
func (s *Scheduler) reaskRoot(now time.Time) {
	if s.finished() || s.root.done {
		return
	}
	for _, p := range s.peers {
		if s.root.state(p) == availDontHave {
			s.root.setState(p, availUnknown)
		}
	}
	s.schedule(now)
}

// failNoProviders ends the fetch because its search ran out of time.
func (s *Scheduler) failNoProviders(searched time.Duration, lookups, found int) {
	if s.finished() {
		return
	}
	e := &NoProvidersError{Root: s.root.c, Searched: searched, Lookups: lookups, Found: found}
	for _, p := range s.all {
		reason := p.reason
		switch {
		case p.active && p.answered:
			reason = ErrDontHave
		case p.active:
			reason = errSilent
		}
		e.Peers = append(e.Peers, PeerError{Peer: p.id, Err: reason})
	}
	s.cancelAll()
	s.err = e
}

// searchState is a fetch's provider search as the loop sees it.
type searchState struct {
	lookups int
	found   int // distinct providers returned
}

// search runs the provider lookups of f until the fetch ends, its content
// is sourced, or the search timeout passes.
func (c *Client) search(f *Fetch) {
	ctx := f.ctx
	sctx, cancel := ctx, context.CancelFunc(func() {})
	if f.opts.SearchTimeout > 0 {
		sctx, cancel = context.WithDeadline(ctx, f.start.Add(f.opts.SearchTimeout))
	}
	defer cancel()
	seen := map[peer.ID]bool{}
	backoff := c.cfg.SearchBackoff
	for {
		n := c.lookup(sctx, f, seen)
		more := make(chan bool, 1)
		if !c.post(func() { more <- c.lookupEnded(f, n, time.Now()) }) || !<-more {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-sctx.Done():
			t.Stop()
			if ctx.Err() == nil {
				c.post(func() { c.searchExpired(f, time.Now()) })
			}
			return
		}
		backoff = min(2*backoff, c.cfg.SearchBackoffMax)
	}
}

// lookup asks the DHT once and connects to the providers it streams in;
// it returns how many of them were new.
func (c *Client) lookup(ctx context.Context, f *Fetch, seen map[peer.ID]bool) int {
	var dials sync.WaitGroup
	sem := make(chan struct{}, c.cfg.DialConcurrency)
	fresh := 0
	for ai := range c.providers.FindProviders(ctx, f.root) {
		if ai.ID == c.net.Self() || ai.ID == "" {
			continue
		}
		if !seen[ai.ID] {
			seen[ai.ID] = true
			fresh++
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		dials.Add(1)
		go func(ai peer.AddrInfo) {
			defer dials.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
			err := c.net.Connect(dctx, ai)
			cancel()
			if err != nil {
				c.log.Debug("bitswap client: provider unreachable", "peer", ai.ID, "err", err)
				return
			}
			c.post(func() {
				c.peers[ai.ID] = true
				c.addPeerTo(f, ai.ID, time.Now())
			})
		}(ai)
	}
	dials.Wait()
	return fresh
}

// lookupEnded runs on the loop after each lookup; false ends the search.
func (c *Client) lookupEnded(f *Fetch, fresh int, now time.Time) bool {
	f.search.lookups++
	f.search.found += fresh
	if _, ok := c.fetches[f]; !ok {
		return false
	}
	if f.s.Sourced() {
		f.s.SetSearching(false, now)
		return false
	}
	f.s.reaskRoot(now)
	return true
}

// searchExpired runs on the loop when the search timeout passes.
func (c *Client) searchExpired(f *Fetch, now time.Time) {
	if _, ok := c.fetches[f]; !ok {
		return
	}
	if f.s.Sourced() {
		f.s.SetSearching(false, now)
		return
	}
	f.s.failNoProviders(now.Sub(f.start), f.search.lookups, f.search.found)
	c.finish(f, now)
}
