package kuborpc

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// idOutput is Kubo's IdOutput.
type idOutput struct {
	ID           string
	PublicKey    string
	Addresses    []string
	AgentVersion string
	Protocols    []string
}

func (s *server) agent() string { return "shoal/" + s.cfg.Version }

func (s *server) id(w http.ResponseWriter, r *http.Request) {
	if a := argsOf(r).q["arg"]; len(a) > 0 && a[0] != s.n.Info().ID {
		// Kubo would look the peer up in the DHT; shoal's RPC answers
		// for this node only.
		s.fail(w, fmt.Errorf("shoal's RPC answers `id` for this node only (%s), not for peer %s", s.n.Info().ID, a[0]))
		return
	}
	info := s.n.Info()
	pk, err := s.n.PublicKey()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := idOutput{ID: info.ID, PublicKey: base64.StdEncoding.EncodeToString(pk), Addresses: slices.Clone(info.Addresses),
		AgentVersion: s.agent(), Protocols: s.n.Protocols()}
	slices.Sort(out.Addresses)
	slices.Sort(out.Protocols)
	s.single(w, out)
}

// kuboRPCVersion is the Kubo whose RPC this package answers as. Kubo's CLI
// and its RPC client parse `version` as semver and switch features on it,
// so Version is this, with shoal's own version as build metadata.
const kuboRPCVersion = "0.43.0"

func (s *server) version(w http.ResponseWriter, _ *http.Request) {
	s.single(w, struct {
		Version, Commit, Repo, System, Golang string
	}{Version: kuboRPCVersion + "+shoal-" + semverSafe(s.cfg.Version), Repo: repoVersion,
		System: runtime.GOARCH + "/" + runtime.GOOS, Golang: runtime.Version()})
}

// semverSafe keeps what a semver build identifier may hold: letters,
// digits, '-' and '.' (not first or last, never two in a row).
func semverSafe(v string) string {
	b := []byte(strings.TrimPrefix(v, "v"))
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	out := strings.Trim(strings.ReplaceAll(string(b), "..", "."), ".")
	if out == "" {
		return "dev"
	}
	return out
}

// repoVersion names shoal's store layout where Kubo names its fs-repo
// version.
const repoVersion = "shoal-blockstore"

// connInfo is Kubo's swarm peers entry without the verbose fields.
type connInfo struct {
	Addr     string `json:",omitempty"`
	Peer     string `json:",omitempty"`
	Identify idOutput
}

func (s *server) swarmPeers(w http.ResponseWriter, _ *http.Request) {
	var out struct{ Peers []connInfo }
	for _, p := range s.n.Peers() {
		out.Peers = append(out.Peers, connInfo{Addr: p.Address, Peer: p.ID})
	}
	slices.SortFunc(out.Peers, func(a, b connInfo) int { return strings.Compare(a.Addr, b.Addr) })
	s.single(w, out)
}

func (s *server) swarmConnect(w http.ResponseWriter, r *http.Request) {
	addrs, err := argsOf(r).need("address")
	if err != nil {
		s.fail(w, err)
		return
	}
	out := struct{ Strings []string }{}
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			s.fail(w, badRequest("%q is not a peer address ending in /p2p/<peer-id>: %v", a, err))
			return
		}
		msg := "connect " + ai.ID.String()
		if err := s.n.Connect(r.Context(), a); err != nil {
			s.fail(w, fmt.Errorf("%s failure: %w", msg, err))
			return
		}
		out.Strings = append(out.Strings, msg+" success")
	}
	s.single(w, out)
}

func (s *server) repoStat(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	sizeOnly, err := a.boolOpt("size-only", false)
	if err != nil {
		s.fail(w, err)
		return
	}
	info := s.n.Info()
	max := uint64(math.MaxUint64) // Kubo's corerepo.NoLimit: no capacity set
	if info.CapacityBytes > 0 {
		max = uint64(info.CapacityBytes)
	}
	out := struct {
		RepoSize, StorageMax, NumObjects uint64
		RepoPath, Version                string
	}{uint64(info.StoreBytes), max, uint64(info.StoreBlocks), s.cfg.RepoPath, repoVersion}
	if sizeOnly {
		// Kubo answers the same object with only the sizes filled in.
		out.NumObjects, out.RepoPath, out.Version = 0, "", ""
	}
	s.single(w, out)
}

func (s *server) repoGC(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	quiet, err := a.boolOpt("quiet", false)
	if err == nil {
		_, err = a.boolOpt("stream-errors", false)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	keys, _, err := s.n.GCKeys(r.Context())
	st := s.newStream(w)
	if err != nil {
		st.end(err)
		return
	}
	for _, k := range keys {
		if quiet {
			continue
		}
		if err := st.emit(struct{ Key cidJSON }{cidJSON{k.String()}}); err != nil {
			return
		}
	}
	st.end(nil)
}

// cidJSON is a CID as go-cid marshals it: {"/": "bafy..."}.
type cidJSON struct {
	S string `json:"/"`
}

// configShow answers the parts of Kubo's config that say something true
// about shoal: identity, addresses, storage limit and import settings
// (shoal always imports with the unixfs-v1-2025 profile).
func (s *server) configShow(w http.ResponseWriter, _ *http.Request) {
	info := s.n.Info()
	storageMax := "0B"
	if info.CapacityBytes > 0 {
		storageMax = fmt.Sprintf("%dB", info.CapacityBytes)
	}
	swarm := s.cfg.SwarmAddrs
	if swarm == nil {
		swarm = []string{}
	}
	// Kubo's config.Strings shows one address as a plain string.
	var gw any
	if ma := tcpMultiaddr(s.cfg.GatewayAddr); ma != "" {
		gw = ma
	}
	s.single(w, map[string]any{
		"Identity":  map[string]any{"PeerID": info.ID},
		"Addresses": map[string]any{"Swarm": swarm, "API": tcpMultiaddr(s.cfg.Addr), "Gateway": gw},
		"Datastore": map[string]any{"StorageMax": storageMax},
		"Import": map[string]any{"CidVersion": 1, "UnixFSRawLeaves": true, "UnixFSChunker": "size-1048576",
			"HashFunction": "sha2-256", "UnixFSFileMaxLinks": 1024, "UnixFSHAMTDirectoryMaxFanout": 256,
			"UnixFSHAMTDirectorySizeThreshold": "256KiB"},
	})
}

// tcpMultiaddr turns HOST:PORT into /ip4|ip6|dns/HOST/tcp/PORT, "" for "".
func tcpMultiaddr(hostport string) string {
	host, port, ok := strings.Cut(hostport, ":")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(hostport, ":"); strings.Contains(host, "[") || strings.Count(hostport, ":") > 1 {
		return "/ip6/" + strings.Trim(hostport[:i], "[]") + "/tcp/" + hostport[i+1:]
	}
	proto := "/ip4/"
	if host == "localhost" {
		proto = "/dns/"
	}
	return proto + host + "/tcp/" + port
}
