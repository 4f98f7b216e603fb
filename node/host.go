package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// KeyFile is the name of the node's private key inside its home.
const KeyFile = "identity.key"

// LoadOrCreateKey returns the node key stored in home, creating an Ed25519
// key on first use. The file is readable by its owner only.
func LoadOrCreateKey(home string) (crypto.PrivKey, error) {
	path := filepath.Join(home, KeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("node: key file %s is damaged (%v): restore it from a backup, or delete it to become a new peer", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("node: reading key %s: %w", path, err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("node: writing key %s: %w", path, err)
	}
	return k, nil
}

// userAgent is what this node tells peers in identify.
const userAgent = "shoal/0.1"

// newHost builds the libp2p host: TCP and QUIC (TCP only in a private
// swarm, which libp2p's PSK does not cover for QUIC), TLS and Noise, a
// resource manager whose limits come from the config rather than from the
// machine's whole memory, and a connection manager.
func newHost(cfg Config, key crypto.PrivKey) (host.Host, error) {
	listen := cfg.Network.Listen
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.UserAgent(userAgent),
		// TLS first, as go-libp2p's defaults and Kubo order them: with
		// AES-NI its AES-GCM costs a fraction of Noise's
		// ChaCha20-Poly1305 per byte, which was a fifth of each daemon's
		// CPU in a fetch (bench/e2e.md, "tlsfirst"). A peer that speaks
		// only Noise (Helia's default) still connects: multistream-select
		// falls back to it.
		libp2p.Security(tls.ID, tls.New),
		libp2p.Security(noise.ID, noise.New),
		// Without SO_REUSEPORT a second daemon on the same port fails to
		// listen instead of silently sharing (and splitting) the first's
		// inbound connections. Outgoing dials then come from ephemeral
		// ports, which only costs TCP hole punching (relay is off anyway).
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.DisableRelay(),
	}
	if cfg.Network.SwarmKey != "" {
		psk, err := readSwarmKey(cfg.Network.SwarmKey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, libp2p.PrivateNetwork(psk))
		listen = tcpOnly(listen)
		if len(listen) == 0 {
			return nil, fmt.Errorf("%w: a private swarm (network.swarm_key) speaks TCP only, and network.listen has no TCP address", ErrConfig)
		}
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	// Listen after New, one address at a time: libp2p's own Listen
	// succeeds when any address works and only logs the others.
	opts = append(opts, libp2p.NoListenAddrs)

	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Scale(cfg.Resources.MaxMemoryBytes, cfg.Resources.MaxFDs)))
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.Resources.ConnsLow, cfg.Resources.ConnsHigh)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	opts = append(opts, libp2p.ResourceManager(rm), libp2p.ConnectionManager(cm))
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		cm.Close()
		return nil, fmt.Errorf("node: starting libp2p: %w", err)
	}
	if err := listenAll(h, listen); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// listenAll opens every listen address or fails naming the first that
// cannot be opened: a node that quietly lost its TCP port would be
// unreachable to half its peers.
func listenAll(h host.Host, addrs []string) error {
	// The swarm's AddListenAddr returns the transport's own error, which
	// Listen flattens into a string.
	type addListener interface{ AddListenAddr(ma.Multiaddr) error }
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: network.listen %q is not a multiaddr: %v", ErrConfig, s, err)
		}
		if al, ok := h.Network().(addListener); ok {
			err = al.AddListenAddr(a)
		} else {
			err = h.Network().Listen(a)
		}
		if err != nil {
			return listenError(s, err)
		}
	}
	return nil
}

// ErrAddrInUse wraps a listen failure because another process holds the
// address.
var ErrAddrInUse = errors.New("address already in use")

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("node: listen %s: %w (another shoal daemon or another program has it): pass --listen with another port, or use port 0 for any free one", addr, ErrAddrInUse)
	}
	return fmt.Errorf("node: listen %s: %w: check network.listen in the config or --listen", addr, err)
}

func tcpOnly(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if strings.Contains(a, "/tcp/") {
			out = append(out, a)
		}
	}
	return out
}

func readSwarmKey(path string) (pnet.PSK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: network.swarm_key: %w", ErrConfig, err)
	}
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: network.swarm_key %s is not a libp2p PSK v1 file (/key/swarm/psk/1.0.0/, /base16/, 64 hex digits): %v", ErrConfig, path, err)
	}
	return psk, nil
}

// PeerIDFromKey returns the peer ID string of a node key.
func PeerIDFromKey(k crypto.PrivKey) (string, error) {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// WriteSwarmKey creates a new random libp2p PSK v1 file at path.
func WriteSwarmKey(path string) error {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	data := fmt.Sprintf("/key/swarm/psk/1.0.0/\n/base16/\n%s\n", hex.EncodeToString(k[:]))
	if err := writeFileAtomic(path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("node: writing swarm key %s: %w", path, err)
	}
	return nil
}
