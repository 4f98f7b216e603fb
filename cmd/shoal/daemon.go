package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/web"
)

// APIFile is the file in a node's home that names its API URL, so the CLI
// finds a running daemon.
const APIFile = "api"

// daemonFlags are the settings a user may override on the command line.
type daemonFlags struct {
	listen      []string
	bootstrap   []string
	apiAddr     string
	gatewayAddr string
	tokens      tokenFlags
	noMDNS      bool
	network     string
	dhtMode     string
	uploadLimit sizeFlag
	capacity    sizeFlag
	swarmKey    string
	logLevel    string
	detach      bool
	rpcAddr     string
	clusterAddr string
}

func (f *daemonFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.listen, "listen", nil, "libp2p listen multiaddr (repeatable; replaces the config's list)")
	fl.StringArrayVar(&f.bootstrap, "bootstrap", nil, "bootstrap peer multiaddr ending in /p2p/<id> (repeatable; added to the config's list)")
	fl.StringVar(&f.apiAddr, "api-addr", "", "HOST:PORT for the API and dashboard (default 127.0.0.1:5080; port 0 picks one)")
	fl.StringVar(&f.gatewayAddr, "gateway-addr", "", "HOST:PORT for the HTTP gateway (default 127.0.0.1:8080; port 0 picks one)")
	f.tokens.register(cmd, "the API requires, mandatory on a non-loopback --api-addr (without a flag: $SHOAL_API_TOKEN, else the config's api.token_file or api.token)")
	fl.BoolVar(&f.noMDNS, "no-mdns", false, "turn off LAN discovery by multicast DNS")
	fl.StringVar(&f.network, "network", "", `"shoal" (the fleet's own DHT) or "ipfs" (the public IPFS DHT)`)
	fl.StringVar(&f.dhtMode, "dht-mode", "", `"server" or "client"`)
	f.uploadLimit.rate = true
	fl.Var(&f.uploadLimit, "upload-limit", "upload limit for the whole node, such as 10MB/s or 2MiB/s (default: the config's, 0 = unlimited)")
	fl.Var(&f.capacity, "capacity", "block storage limit, such as 50GiB or 500GB; unpinned blocks are evicted LRU (default: the config's, 0 = unlimited)")
	fl.StringVar(&f.swarmKey, "swarm-key", "", "path to a PSK file: join only the private swarm that shares it (TCP only)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.rpcAddr, "rpc-addr", "", "HOST:PORT for the Kubo-compatible RPC /api/v0 (IPFS Cluster, `ipfs --api`), such as 127.0.0.1:5001 (default off; the config's api.rpc_addr)")
	fl.StringVar(&f.clusterAddr, "cluster-addr", "", "HOST:PORT of an IPFS Cluster peer's REST API, such as 127.0.0.1:9094: the dashboard shows the cluster's replication of each pin (default off; the config's cluster.rest_addr)")
	fl.BoolVar(&f.detach, "detach", false, "run in the background (output in HOME/daemon.log) and return once the API answers; stop it with `shoal stop`")
}

func (f *daemonFlags) apply(cfg *node.Config) {
	if len(f.listen) > 0 {
		cfg.Network.Listen = f.listen
	}
	cfg.Network.Bootstrap = append(cfg.Network.Bootstrap, f.bootstrap...)
	if f.apiAddr != "" {
		cfg.API.Addr = f.apiAddr
	}
	if f.gatewayAddr != "" {
		cfg.API.GatewayAddr = f.gatewayAddr
	}
	if f.rpcAddr != "" {
		cfg.API.RPCAddr = f.rpcAddr
	}
	if f.clusterAddr != "" {
		cfg.Cluster.RESTAddr = f.clusterAddr
	}
	if f.noMDNS {
		cfg.Network.MDNS = false
	}
	if f.network != "" {
		cfg.Network.Network = f.network
	}
	if f.dhtMode != "" {
		cfg.Network.DHTMode = f.dhtMode
	}
	if f.uploadLimit.set {
		cfg.Transfer.UploadLimit = f.uploadLimit.n
	}
	if f.capacity.set {
		cfg.Store.CapacityBytes = f.capacity.n
	}
	if f.swarmKey != "" {
		cfg.Network.SwarmKey = f.swarmKey
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func newDaemonCmd(g *globalFlags) *cobra.Command {
	f := &daemonFlags{}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "run a shoal node (API and dashboard on 127.0.0.1:5080, gateway on 127.0.0.1:8080)",
		Long: `daemon runs a shoal node until SIGINT or SIGTERM. On first start it
initialises its home (config.toml and key). It prints its peer ID, addresses
and URLs, and writes its API URL into the home so the CLI finds it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			if f.detach {
				return detach(cmd, g, home)
			}
			log, err := newLogger(cmd.ErrOrStderr(), f.logLevel)
			if err != nil {
				return err
			}
			if err := ensureHome(home, cmd.ErrOrStderr()); err != nil {
				return err
			}
			// Flags and the token (environment, file) are applied before
			// the config is validated: they may supply what it lacks.
			cfg, err := node.LoadConfigWith(home, func(c *node.Config) error {
				f.apply(c)
				return applyDaemonToken(&f.tokens, c, cmd.ErrOrStderr())
			})
			if err != nil {
				return err
			}
			cfg.Logger = log
			checkOpenFileLimit(cfg, log)
			return runDaemon(cmd.Context(), cfg, cmd.OutOrStdout(), log)
		},
	}
	f.register(cmd)
	return cmd
}

// ensureHome initialises home (key and commented config) if it has no
// config yet.
func ensureHome(home string, w io.Writer) error {
	if _, err := os.Stat(filepath.Join(home, node.ConfigFile)); err == nil {
		return nil
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating home %s: %w", home, err)
	}
	if _, err := node.LoadOrCreateKey(home); err != nil {
		return err
	}
	if err := node.WriteConfig(node.DefaultConfig(home)); err != nil {
		return fmt.Errorf("writing config into %s: %w", home, err)
	}
	fmt.Fprintf(w, "initialised shoal home %s\n", home)
	return nil
}

// runDaemon starts the node and its HTTP listeners and blocks until ctx
// ends, then shuts everything down.
func runDaemon(ctx context.Context, cfg node.Config, out io.Writer, log *slog.Logger) error {
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		return err
	}

	front, err := startHTTP(n, cfg, log)
	if err != nil {
		return err
	}
	defer front.shutdown()
	apiURL, gwURL := front.apiURL, front.gwURL

	apiFile := filepath.Join(cfg.Home, APIFile)
	if err := writeHomeFile(apiFile, []byte(apiURL+"\n")); err != nil {
		return fmt.Errorf("writing %s: %w", apiFile, err)
	}
	defer os.Remove(apiFile)
	removePID, err := writePIDFile(cfg.Home)
	if err != nil {
		return err
	}
	defer removePID()

	info := n.Info()
	fmt.Fprintf(out, "shoal daemon running\n  peer id:   %s\n", info.ID)
	for _, a := range info.Addresses {
		fmt.Fprintf(out, "  address:   %s\n", a)
	}
	fmt.Fprintf(out, "  dashboard: %s/\n  api:       %s/api/v1/\n  gateway:   %s/ipfs/<cid>\n  home:      %s\n",
		apiURL, apiURL, gwURL, cfg.Home)
	if front.rpcURL != "" {
		fmt.Fprintf(out, "  kubo rpc:  %s/api/v0/\n", front.rpcURL)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-front.errc:
	}
	log.Info("shutting down")
	front.shutdown()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return n.Close()
}

// httpFront is a node's API and gateway listeners.
type httpFront struct {
	apiURL, gwURL string
	rpcURL        string
	servers       []*http.Server
	errc          chan error
	once          sync.Once
}

// startHTTP binds the API and gateway addresses of cfg (port 0 picks a
// free port) and serves them for n.
func startHTTP(n *node.Node, cfg node.Config, log *slog.Logger) (*httpFront, error) {
	apiLn, err := net.Listen("tcp", cfg.API.Addr)
	if err != nil {
		return nil, fmt.Errorf("API address %s: %w (another daemon running? pick another with --api-addr)", cfg.API.Addr, err)
	}
	gwLn, err := net.Listen("tcp", cfg.API.GatewayAddr)
	if err != nil {
		apiLn.Close()
		return nil, fmt.Errorf("gateway address %s: %w (pick another with --gateway-addr)", cfg.API.GatewayAddr, err)
	}
	f := &httpFront{apiURL: "http://" + apiLn.Addr().String(), gwURL: "http://" + gwLn.Addr().String(), errc: make(chan error, 4)}
	acfg := web.DefaultAPIConfig(apiLn.Addr().String())
	acfg.Token, acfg.GatewayURL, acfg.Logger = cfg.API.Token, f.gwURL, log.With("part", "api")
	api, err := web.NewSite(acfg, n)
	if err != nil {
		apiLn.Close()
		gwLn.Close()
		return nil, err
	}
	gcfg := web.DefaultGatewayConfig()
	gcfg.Logger = log.With("part", "gateway")
	gw, err := web.NewGateway(gcfg, n)
	if err != nil {
		apiLn.Close()
		gwLn.Close()
		return nil, err
	}
	var lns []net.Listener
	for _, s := range []struct {
		ln   net.Listener
		h    http.Handler
		max  int
		part string
	}{{apiLn, api, cfg.API.MaxConns, "api"}, {gwLn, gw, cfg.API.GatewayMaxConns, "gateway"}} {
		scfg := web.DefaultServerConfig(s.max)
		scfg.Logger = log.With("part", s.part)
		srv, ln, err := web.NewServer(s.ln, s.h, scfg)
		if err != nil {
			apiLn.Close()
			gwLn.Close()
			return nil, err
		}
		f.servers, lns = append(f.servers, srv), append(lns, ln)
	}
	if srv, ln := fileSocketServer(n, acfg, cfg, log); srv != nil {
		f.servers, lns = append(f.servers, srv), append(lns, ln)
	}
	rsrv, rln, err := f.startRPC(n, cfg, log)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	if rsrv != nil {
		f.servers, lns = append(f.servers, rsrv), append(lns, rln)
	}
	for i, ln := range lns {
		go func() { f.errc <- f.servers[i].Serve(ln) }()
	}
	return f, nil
}

// shutdown stops both servers, giving requests in flight a few seconds.
func (f *httpFront) shutdown() {
	f.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range f.servers {
			_ = s.Shutdown(ctx)
		}
	})
}

// initFlags are the options of `shoal init`.
func newInitCmd(g *globalFlags) *cobra.Command {
	var swarmKey bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "create a node home: commented config.toml and a key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(home, node.ConfigFile)); err == nil {
				return fmt.Errorf("%s already holds a shoal home: edit %s, or choose another --home", home, filepath.Join(home, node.ConfigFile))
			}
			if err := ensureHome(home, io.Discard); err != nil {
				return err
			}
			if swarmKey {
				path := filepath.Join(home, "swarm.key")
				if err := node.WriteSwarmKey(path); err != nil {
					return err
				}
				cfg, err := node.LoadConfig(home)
				if err != nil {
					return err
				}
				cfg.Network.SwarmKey = path
				cfg.Network.Listen = []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", node.DefaultListenPort)}
				if err := node.WriteConfig(cfg); err != nil {
					return err
				}
			}
			key, err := node.LoadOrCreateKey(home)
			if err != nil {
				return err
			}
			id, err := node.PeerIDFromKey(key)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"home": home, "id": id})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialised shoal home %s\npeer id: %s\nconfig:  %s\n", home, id,
				filepath.Join(home, node.ConfigFile))
			if swarmKey {
				fmt.Fprintf(cmd.OutOrStdout(), "swarm key: %s (copy it to every node of the private swarm)\n", filepath.Join(home, "swarm.key"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&swarmKey, "swarm-key", false, "also create a pre-shared key for a private swarm (TCP only)")
	return cmd
}

// freeOr returns addr if it can be bound now, else the same host with
// port 0.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		host, _, _ := net.SplitHostPort(addr)
		return net.JoinHostPort(host, "0")
	}
	ln.Close()
	return addr
}
