package dht

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsConnectTimeout bounds one dial to a peer found on the LAN.
const mdnsConnectTimeout = 10 * time.Second

// lanDiscovery runs go-libp2p's mDNS service and connects to every peer it
// finds; kad-dht adds connected peers that speak its protocol to the routing
// table, so a connection is all the DHT needs.
type lanDiscovery struct {
	svc   mdns.Service
	conns *peerConnector
}

func startLANDiscovery(ctx context.Context, h host.Host, service string, log *slog.Logger, wg *sync.WaitGroup) (*lanDiscovery, error) {
	pc := newPeerConnector(ctx, h, log, wg)
	svc := mdns.NewMdnsService(h, service, pc)
	if err := svc.Start(); err != nil {
		_ = svc.Close()
		return nil, err
	}
	return &lanDiscovery{svc: svc, conns: pc}, nil
}

// close stops the mDNS service and refuses further peers; dials in flight
// end with the Router's context and are joined by the Router.
func (d *lanDiscovery) close() error {
	err := d.svc.Close()
	d.conns.stop()
	return err
}

// peerConnector is an mdns.Notifee. mDNS calls HandlePeerFound on goroutines
// it does not track, so the callback only hands the peer to a connect
// goroutine owned by the Router, and does nothing once ctx is done.
type peerConnector struct {
	ctx  context.Context
	host host.Host
	log  *slog.Logger
	wg   *sync.WaitGroup

	mu      sync.Mutex
	stopped bool // set before the Router waits on wg, so no Add races Wait
	dialing map[peer.ID]bool
}

func (c *peerConnector) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
}

func newPeerConnector(ctx context.Context, h host.Host, log *slog.Logger, wg *sync.WaitGroup) *peerConnector {
	return &peerConnector{ctx: ctx, host: h, log: log, wg: wg, dialing: map[peer.ID]bool{}}
}

// HandlePeerFound connects to a peer announced on the LAN, unless it is this
// node, already connected, or being dialled.
func (c *peerConnector) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == c.host.ID() || c.host.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	c.mu.Lock()
	if c.stopped || c.ctx.Err() != nil || c.dialing[ai.ID] {
		c.mu.Unlock()
		return
	}
	c.dialing[ai.ID] = true
	c.wg.Add(1) // under mu and not stopped: the Router is not yet waiting
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.dialing, ai.ID)
			c.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(c.ctx, mdnsConnectTimeout)
		defer cancel()
		if err := c.host.Connect(ctx, ai); err != nil {
			c.log.Debug("dht: connect to LAN peer failed", "peer", ai.ID, "err", err)
			return
		}
		c.log.Debug("dht: connected to LAN peer", "peer", ai.ID)
	}()
}
