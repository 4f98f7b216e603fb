package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoalnet/shoal/blockstore"
)

// Startup failures: each returns an error naming the file or address and
// what to do, instead of panicking in the cleanup of a half-built node
// (issue #15 item 1), and a second node never shares a listen port with
// the first (item 8).

// homeConfig is testConfig on an on-disk home.
func homeConfig(home string, listen ...string) Config {
	cfg := testConfig()
	cfg.Home = home
	if len(listen) > 0 {
		cfg.Network.Listen = listen
	}
	return cfg
}

// mustFail builds a node from cfg and returns its error; the test fails
// if the node starts.
func mustFail(t *testing.T, cfg Config) error {
	t.Helper()
	n, err := New(cfg)
	if err == nil {
		n.Close()
		t.Fatalf("New(%v) started a node; want an error", cfg.Network.Listen)
	}
	if n != nil {
		t.Errorf("New returned a node with its error %v", err)
	}
	return err
}

func wantText(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\ndoes not contain %q", err, p)
		}
	}
}

func TestStartupSecondNodeSameHome(t *testing.T) {
	home := t.TempDir()
	first := startNode(t, homeConfig(home))
	err := mustFail(t, homeConfig(home))
	if !errors.Is(err, blockstore.ErrInUse) {
		t.Errorf("error %v does not wrap blockstore.ErrInUse", err)
	}
	wantText(t, err, fmt.Sprintf("another shoal daemon (pid %d) is using home %s", os.Getpid(), home), "stop it first", "--home")
	if strings.Count(err.Error(), home) != 1 {
		t.Errorf("error %q names the home more than once", err)
	}
	// The refused second node left the first one's store alone.
	if _, err := first.AddFile(t.Context(), strings.NewReader("still mine")); err != nil {
		t.Fatalf("first node after the refused second: %v", err)
	}
}

func TestStartupMalformedRoots(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, rootsFile)
	for _, bad := range []string{"{not json", `["a list"]`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		err := mustFail(t, homeConfig(home))
		wantText(t, err, "node: "+path+" is not a valid roots file", "fix it or delete it")
	}
	// The failed starts released the store: removing the file is enough.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	startNode(t, homeConfig(home))
}

func TestStartupMalformedKey(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, KeyFile)
	for _, bad := range [][]byte{nil, []byte("not a protobuf key")} {
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		err := mustFail(t, homeConfig(home))
		wantText(t, err, "node: key file "+path+" is damaged", "restore it from a backup, or delete it")
	}
}

// TestStartupPortTaken: a port held by another program (a plain socket,
// without SO_REUSEPORT) is refused with the address and what to do.
func TestStartupPortTaken(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	err = mustFail(t, homeConfig(t.TempDir(), addr))
	if !errors.Is(err, ErrAddrInUse) {
		t.Errorf("error %v does not wrap ErrAddrInUse", err)
	}
	wantText(t, err, "node: listen "+addr+": address already in use", "pass --listen with another port")
}

// TestStartupSamePortAsRunningNode: a second node configured with the
// first's TCP port, or its QUIC (UDP) port, fails to start; before, the
// TCP transport's SO_REUSEPORT let both bind the TCP port, and a QUIC
// address that failed was only logged while TCP worked.
func TestStartupSamePortAsRunningNode(t *testing.T) {
	first := startNode(t, homeConfig("", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	var tcpAddr, quicAddr string
	for _, a := range first.Host().Network().ListenAddresses() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			tcpAddr = a.String()
		}
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quicAddr = a.String()
		}
	}
	if tcpAddr == "" || quicAddr == "" {
		t.Fatalf("first node listens on %v; want a TCP and a QUIC address", first.Host().Network().ListenAddresses())
	}
	for _, listen := range [][]string{
		{tcpAddr},
		{"/ip4/127.0.0.1/tcp/0", quicAddr},
	} {
		taken := listen[len(listen)-1]
		err := mustFail(t, homeConfig("", listen...))
		if !errors.Is(err, ErrAddrInUse) {
			t.Errorf("listen %v: error %v does not wrap ErrAddrInUse", listen, err)
		}
		wantText(t, err, "node: listen "+taken+": address already in use")
	}
	// The first node still accepts connections on its TCP port.
	second := startNode(t, testConfig())
	if err := second.Connect(t.Context(), tcpAddr+"/p2p/"+first.Host().ID().String()); err != nil {
		t.Fatalf("connecting to the first node after the refused ones: %v", err)
	}
}
