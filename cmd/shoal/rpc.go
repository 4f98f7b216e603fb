package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/shoalnet/shoal/kuborpc"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/web"
)

// startRPC binds the Kubo-compatible RPC on cfg.API.RPCAddr when it is
// set (port 0 picks one) and returns its server and listener (nil when
// off), which startHTTP serves beside the API and the gateway: it is shut
// down with them and its serve error ends the daemon like theirs.
func (f *httpFront) startRPC(n *node.Node, cfg node.Config, log *slog.Logger) (*http.Server, net.Listener, error) {
	if cfg.API.RPCAddr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", cfg.API.RPCAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("rpc address %s: %w (another IPFS daemon on it? pick another with --rpc-addr)", cfg.API.RPCAddr, err)
	}
	gwAddr := strings.TrimPrefix(f.gwURL, "http://")
	rcfg := kuborpc.Config{Addr: ln.Addr().String(), Token: cfg.API.Token, Version: buildVersion().Version,
		RepoPath: cfg.Home, SwarmAddrs: cfg.Network.Listen, GatewayAddr: gwAddr, Logger: log.With("part", "rpc")}
	h, err := kuborpc.New(rcfg, n)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	scfg := web.DefaultServerConfig(cfg.API.MaxConns)
	scfg.Logger = log.With("part", "rpc")
	srv, lln, err := web.NewServer(ln, h, scfg)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	f.rpcURL = "http://" + ln.Addr().String()
	return srv, lln, nil
}
