package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// libp2p and kad-dht keep a few process-wide helpers alive.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p-kbucket.(*RoutingTable).cplRefreshPeerLoop"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/host/resource-manager.(*resourceManager).background"),
	)
}

func testConfig(bootstrap ...string) Config {
	cfg := DefaultConfig("")
	cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Network.MDNS = false
	cfg.Network.Bootstrap = bootstrap
	cfg.Store.Sync = false
	return cfg
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	return startNodeWithParts(t, cfg, Parts{})
}

// startNodeWithParts starts a node on parts of the test's own; it is
// closed when the test ends.
func startNodeWithParts(t *testing.T, cfg Config, parts Parts) *Node {
	t.Helper()
	n, err := NewWithParts(cfg, parts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestPrivateSwarm: nodes sharing a swarm key connect and exchange
// content; a node with another key cannot connect to them at all.
func TestPrivateSwarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	k1, k2 := dir+"/k1", dir+"/k2"
	if err := WriteSwarmKey(k1); err != nil {
		t.Fatal(err)
	}
	if err := WriteSwarmKey(k2); err != nil {
		t.Fatal(err)
	}
	private := func(key string) Config {
		cfg := testConfig()
		cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		cfg.Network.SwarmKey = key
		return cfg
	}
	a := startNode(t, private(k1))
	b := startNode(t, private(k1))
	stranger := startNode(t, private(k2))
	for _, addr := range a.Info().Addresses {
		if !bytes.Contains([]byte(addr), []byte("/tcp/")) {
			t.Fatalf("private node listens on %s; a private swarm must be TCP only", addr)
		}
	}
	data := randomBytes(1<<20+1, 3)
	res, err := a.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatalf("same key: %v", err)
	}
	f, err := b.Open(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("same-key peer read %d bytes, err %v", len(got), err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	if err := stranger.Connect(cctx, a.Info().Addresses[0]); err == nil {
		t.Fatal("a node with another swarm key connected to the private swarm")
	}
}

// TestConfigFileErrors: a config file with errors names the line or the
// setting and what is wrong.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"syntax", "[network]\nmdns = yes\n", "line 2"},
		{"unknown key", "[network]\nmnds = true\n", "unknown setting network.mnds"},
		{"bad value", "[network]\ndht_mode = \"both\"\n", "network.dht_mode"},
		{"bad multiaddr", "[network]\nlisten = [\"tcp:4040\"]\n", "network.listen"},
		{"open API", "[api]\naddr = \"0.0.0.0:5080\"\n", "api.token"},
		{"two tokens", "[api]\ntoken = \"a\"\ntoken_file = \"/run/secrets/shoal\"\n", "api.token and api.token_file are both set"},
		{"no connections", "[api]\nmax_conns = 0\n", "api.max_conns (0)"},
		{"negative slots", "[transfer]\nupload_slots = -1\n", "transfer.upload_slots is negative"},
		{"cluster URL", "[cluster]\nrest_addr = \"http://127.0.0.1:9094\"\n", `cluster.rest_addr "http://127.0.0.1:9094" is not HOST:PORT`},
		{"cluster no port", "[cluster]\nrest_addr = \"127.0.0.1\"\n", "cluster.rest_addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.WriteFile(home+"/"+ConfigFile, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(home)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadConfig error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	home := t.TempDir()
	def := DefaultConfig(home)
	def.Transfer.UploadSlots = 3
	def.Cluster.RESTAddr = "127.0.0.1:9094"
	if err := WriteConfig(def); err != nil {
		t.Fatal(err)
	}
	// An open API address loads when an override supplies the token (as
	// the daemon does from SHOAL_API_TOKEN or --api-token-file), and an
	// override's error is returned as it is.
	open := t.TempDir()
	if err := os.WriteFile(open+"/"+ConfigFile, []byte("[api]\naddr = \"0.0.0.0:5080\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfigWith(open, func(c *Config) error { c.API.Token = "from-env"; return nil }); err != nil || c.API.Token != "from-env" {
		t.Fatalf("open API with a token from an override: %v", err)
	}
	errOverride := errors.New("bad flag")
	if _, err := LoadConfigWith(open, func(*Config) error { return errOverride }); !errors.Is(err, errOverride) {
		t.Fatalf("override error: got %v", err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatalf("the written default config does not load: %v", err)
	}
	if cfg.Network.Network != "shoal" || !cfg.Network.MDNS || cfg.API.Addr != "127.0.0.1:5080" || cfg.Transfer.UploadSlots != 3 || cfg.Cluster.RESTAddr != "127.0.0.1:9094" {
		t.Fatalf("round-tripped config = %+v", cfg)
	}
}
