package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/testbin"
)

// clusterVersion is the IPFS Cluster the fleet tests run shoal behind.
var clusterVersion = testbin.IPFSCluster.Version

// clusterBinaries returns ipfs-cluster-service and ipfs-cluster-ctl, or
// skips t saying how to get them.
// clusterBuildWait bounds the wait for an IPFS Cluster build in progress
// (1.5 min with a warm Go build cache, about 12 min cold on 2 cores).
const clusterBuildWait = 10 * time.Minute

func clusterBinaries(t *testing.T) (service, ctl string) {
	t.Helper()
	shoalBinary(t) // skips with -short
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	if os.Getenv(testbin.IPFSCluster.OptIn) != "1" {
		// Waiting for a build another process runs (CI's, in the
		// background) is bounded: on a loaded machine it once took 27 min
		// at nice 19 and the wait ran the package into its timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, clusterBuildWait)
		defer cancel()
	}
	bins, err := testbin.Build(ctx, testbin.IPFSCluster, t.Logf)
	if errors.Is(err, testbin.ErrNotBuilt) {
		t.Skipf("no IPFS Cluster %s to run shoal behind: %v", clusterVersion, err)
	}
	if errors.Is(err, testbin.ErrStillBuilding) {
		t.Skipf("IPFS Cluster %s still building after %v (%v); the next run finds it cached, or build it first with go run ./internal/testbin/build ipfs-cluster", clusterVersion, clusterBuildWait, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bins[0], bins[1]
}

// clusterPeer is one ipfs-cluster-service process (CRDT consensus, every
// listener on loopback) in front of one shoal daemon's Kubo RPC.
type clusterPeer struct {
	t        *testing.T
	bin, dir string
	id       string // its cluster peer ID
	addr     string // its libp2p multiaddr with /p2p/
	rest     string // its REST API multiaddr, for ipfs-cluster-ctl --host
	cmd      *exec.Cmd
	logPath  string
	exited   chan struct{}
}

// initClusterPeer runs `ipfs-cluster-service init --consensus crdt` in
// dir and rewrites its service.json for a loopback test: its own ports,
// the shoal RPC at rpcAddr, short intervals (a peer is declared down 2 s
// after its last ping, checked every second), and no IPFS proxy or
// pinning-service API.
func initClusterPeer(t *testing.T, port func() string, bin, dir, name, secret, rpcAddr string) *clusterPeer {
	t.Helper()
	p := &clusterPeer{t: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "cluster.log"), exited: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", dir, "init", "--consensus", "crdt", "--force")
	cmd.Env = append(os.Environ(), "CLUSTER_SECRET="+secret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ipfs-cluster-service init: %v\n%s", err, out)
	}
	var ident struct {
		ID string `json:"id"`
	}
	readJSON(t, filepath.Join(dir, "identity.json"), &ident)
	p.id = ident.ID
	listen := "/ip4/127.0.0.1/tcp/" + port()
	p.addr = listen + "/p2p/" + p.id
	p.rest = "/ip4/127.0.0.1/tcp/" + port()
	rpcHost, rpcPort, _ := strings.Cut(rpcAddr, ":")

	var cfg map[string]any
	path := filepath.Join(dir, "service.json")
	readJSON(t, path, &cfg)
	set := func(value any, keys ...string) {
		m := cfg
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				t.Fatalf("service.json has no section %s", strings.Join(keys, "."))
			}
			m = next
		}
		m[keys[len(keys)-1]] = value
	}
	set(name, "cluster", "peername")
	set([]string{listen}, "cluster", "listen_multiaddress")
	set("1s", "cluster", "monitor_ping_interval")
	set("1s", "cluster", "peer_watch_interval")
	set("5s", "cluster", "state_sync_interval")
	set("5s", "cluster", "pin_recover_interval")
	set("0s", "cluster", "mdns_interval")
	set(false, "cluster", "disable_repinning") // on by default in v1.1.6
	set("1s", "cluster", "pubsub", "heartbeat_interval")
	set("1s", "monitor", "pubsubmon", "check_interval")
	for _, inf := range []string{"disk", "tags", "pinqueue"} {
		if inf, ok := cfg["informer"].(map[string]any)[inf].(map[string]any); ok {
			inf["metric_ttl"] = "2s"
		}
	}
	set("1s", "consensus", "crdt", "rebroadcast_interval")
	set(fmt.Sprintf("/ip4/%s/tcp/%s", rpcHost, rpcPort), "ipfs_connector", "ipfshttp", "node_multiaddress")
	set("1s", "ipfs_connector", "ipfshttp", "connect_swarms_delay")
	set(p.rest, "api", "restapi", "http_listen_multiaddress")
	apis := cfg["api"].(map[string]any)
	delete(apis, "ipfsproxy")
	delete(apis, "pinsvcapi")
	saveJSON(t, path, cfg)
	return p
}

// knowPeers writes the other peers' addresses into peer_addresses, so the
// peer can dial every member from the start (on loopback there is no
// other way to learn them but asking the bootstrap peer's DHT).
func (p *clusterPeer) knowPeers(all []*clusterPeer) {
	var addrs []string
	for _, o := range all {
		if o != p {
			addrs = append(addrs, o.addr)
		}
	}
	var cfg map[string]any
	path := filepath.Join(p.dir, "service.json")
	readJSON(p.t, path, &cfg)
	cfg["cluster"].(map[string]any)["peer_addresses"] = addrs
	saveJSON(p.t, path, cfg)
}

func saveJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// portPicker hands out free loopback ports, never the same one twice
// (freePort alone may, once its listener is closed).
func portPicker(t *testing.T) func() string {
	given := map[string]bool{}
	return func() string {
		for {
			p := freePort(t)
			if !given[p] {
				given[p] = true
				return p
			}
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// start runs the peer's daemon, joining through bootstrap when given.
func (p *clusterPeer) start(bootstrap string) {
	t := p.t
	t.Helper()
	args := []string{"--config", p.dir, "daemon"}
	if bootstrap != "" {
		args = append(args, "--bootstrap", bootstrap)
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.exited) }()
	t.Cleanup(p.stop)
}

// stop ends the daemon with SIGTERM, as a service manager would.
func (p *clusterPeer) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("cluster peer in %s did not stop on SIGTERM within 20 s", p.dir)
	}
}

// kill ends the daemon at once, as a machine that dies.
func (p *clusterPeer) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// logTail is the end of the peer's log with repeats left out: a line
// whose text after its timestamp was already kept (a peer that retries
// a dead peer logs the same error every second) is counted, not shown,
// so the 60 lines show what else happened.
func (p *clusterPeer) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	seen := map[string]bool{}
	var kept []string
	dropped := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		text := line // the cluster's logger puts a tab after the timestamp; plain lines a space
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			text = line[i+1:]
		}
		if seen[text] {
			dropped++
			continue
		}
		seen[text] = true
		kept = append(kept, line)
	}
	tail := testbin.LastLines([]byte(strings.Join(kept, "\n")), 60)
	if dropped > 0 {
		tail += fmt.Sprintf("\n(%d repeated lines left out)", dropped)
	}
	return tail
}

// ctl runs ipfs-cluster-ctl against this peer's REST API.
func (p *clusterPeer) ctl(ctlBin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctlBin, append([]string{"--host", p.rest, "--enc", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ipfs-cluster-ctl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// jsonValues decodes a stream of JSON values (ipfs-cluster-ctl --enc json
// prints one per item).
func jsonValues[T any](s string) ([]T, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var out []T
	for {
		var v T
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, fmt.Errorf("decoding %q: %w", s, err)
		}
		out = append(out, v)
	}
}

// pinStatus is the part of IPFS Cluster's GlobalPinInfo the test reads.
type pinStatus struct {
	CID         string   `json:"cid"`
	Allocations []string `json:"allocations"`
	PeerMap     map[string]struct {
		IPFS   string `json:"ipfs_peer_id"`
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"peer_map"`
}

// pinnedOn lists the cluster peers that report c pinned.
func (st pinStatus) pinnedOn() []string {
	var on []string
	for id, pi := range st.PeerMap {
		if pi.Status == "pinned" {
			on = append(on, id)
		}
	}
	slices.Sort(on)
	return on
}

// rpc posts one Kubo RPC call to a shoal daemon and returns the body.
func rpc(t *testing.T, addr, call string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v0/"+call, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s on %s: %v", call, addr, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s on %s: %d %v: %s", call, addr, res.StatusCode, err, b)
	}
	if e := res.Trailer.Get("X-Stream-Error"); e != "" {
		t.Fatalf("POST %s on %s: the answer ended with X-Stream-Error %q after %d B", call, addr, e, len(b))
	}
	return b
}

// held is what a shoal daemon holds under its pins, from its own RPC:
// the CIDs its pin/ls lists (recursive roots and every block under them
// that is stored here), by CID.
func held(t *testing.T, rpcAddr string) map[string]string {
	t.Helper()
	type line struct{ Cid, Type string }
	lines, err := jsonValues[line](string(rpc(t, rpcAddr, "pin/ls?stream=true&type=all")))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range lines {
		out[l.Cid] = l.Type
	}
	return out
}

// holdsDAG reports whether the daemon pins root and holds every block of
// want (the seeder's pin/ls under that root).
func holdsDAG(have, want map[string]string, root string) bool {
	if have[root] != "recursive" {
		return false
	}
	for c := range want {
		if _, ok := have[c]; !ok {
			return false
		}
	}
	return true
}

func holdsAny(have, want map[string]string) bool {
	for c := range want {
		if _, ok := have[c]; ok {
			return true
		}
	}
	return false
}

// waitFor polls cond every 200 ms until it holds or limit passes; what
// names what was waited for in the failure.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > limit {
			t.Fatalf("%s: not reached within %s; last state: %s", what, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterReplicatesOnShoal: three IPFS Cluster peers (CRDT), each in
// front of its own shoal daemon's Kubo RPC, and a fourth shoal daemon,
// outside the cluster, that shares a file. `ipfs-cluster-ctl pin add
// --replication-min 2 --replication-max 2` ends with exactly two of the
// three shoal daemons pinning the whole DAG, fetched over shoal's swarm
// from the seeder (the cluster only sends pin/add); killing one of them
// (its cluster peer and its daemon) makes the cluster re-pin on the third;
// `ipfs-cluster-ctl add` lands in shoal with the CID shoal (and Kubo's
// unixfs-v1-2025 profile) computes for the file, and its bytes cat back;
// `pin rm` unpins everywhere and `ipfs-cluster-ctl ipfs gc` leaves both
// live daemons with no block. The times to 2/3 and to heal are logged
// (bench/deploy.md).
func TestClusterReplicatesOnShoal(t *testing.T) {
	service, ctlBin := clusterBinaries(t)
	dir := t.TempDir()

	withRPC := func(addr string) func(*exec.Cmd) {
		return func(c *exec.Cmd) { c.Args = append(c.Args, "--rpc-addr", addr) }
	}
	port := portPicker(t)
	seedRPC := "127.0.0.1:" + port()
	seed := startDaemonWith(t, filepath.Join(dir, "seed"), withRPC(seedRPC))
	secretBytes := make([]byte, 32)
	if _, err := rand.Read(secretBytes); err != nil {
		t.Fatal(err)
	}
	secret := hex.EncodeToString(secretBytes)

	type member struct {
		shoal   *daemon
		rpcAddr string
		peer    *clusterPeer
	}
	var fleet []*member
	for i := range 3 {
		m := &member{rpcAddr: "127.0.0.1:" + port()}
		m.shoal = startDaemonWith(t, filepath.Join(dir, fmt.Sprintf("shoal%d", i)), withRPC(m.rpcAddr), seed.addr)
		m.peer = initClusterPeer(t, port, service, filepath.Join(dir, fmt.Sprintf("cluster%d", i)), fmt.Sprintf("peer%d", i), secret, m.rpcAddr)
		fleet = append(fleet, m)
	}
	defer func() {
		if t.Failed() {
			for i, m := range fleet {
				t.Logf("cluster peer %d log:\n%s\nshoal %d log:\n%s", i, m.peer.logTail(), i, testbin.LastLines(m.shoal.log.Bytes(), 20))
			}
		}
	}()
	var peers []*clusterPeer
	for _, m := range fleet {
		peers = append(peers, m.peer)
	}
	for _, p := range peers {
		p.knowPeers(peers)
	}
	fleet[0].peer.start("")
	for _, m := range fleet[1:] {
		m.peer.start(fleet[0].peer.addr)
	}
	byPeer := map[string]*member{}
	for _, m := range fleet {
		byPeer[m.peer.id] = m
	}

	// The cluster is ready when every peer sees three peers, each with its
	// shoal daemon's peer ID (the connector's id call), and the allocator
	// has a free-space metric of all three.
	ready := waitFor(t, 2*time.Minute, "three cluster peers, each with its shoal daemon", func() (bool, string) {
		for _, m := range fleet {
			out, err := m.peer.ctl(ctlBin, "peers", "ls")
			if err != nil {
				return false, err.Error()
			}
			type peerID struct {
				ID   string `json:"id"`
				IPFS struct {
					ID string `json:"id"`
				} `json:"ipfs"`
				Error string `json:"error"`
			}
			peers, err := jsonValues[peerID](out)
			if err != nil || len(peers) != 3 {
				return false, fmt.Sprintf("%s sees %d peers: %s %v", m.peer.id, len(peers), out, err)
			}
			for _, p := range peers {
				if byPeer[p.ID] == nil || p.IPFS.ID != byPeer[p.ID].shoal.id {
					return false, fmt.Sprintf("peer %s reports IPFS %q (error %q)", p.ID, p.IPFS.ID, p.Error)
				}
			}
		}
		out, err := fleet[0].peer.ctl(ctlBin, "health", "metrics", "freespace")
		n := strings.Count(out, `"peer"`)
		return err == nil && n >= 3, fmt.Sprintf("%d freespace metrics %v", n, err)
	})
	t.Logf("cluster of 3 ready in %s", ready.Round(time.Millisecond))

	// The seeder (not a cluster member) shares 5 MiB + 12345 B: six leaves
	// and a root.
	src := filepath.Join(dir, "payload.bin")
	data := randomFile(t, src, 5<<20+12345)
	root := lastLine(seed.cli("share", src))
	want := held(t, seedRPC)
	if len(want) != 7 || want[root] != "recursive" {
		t.Fatalf("the seeder's pin/ls: %v, want the root and its 6 leaves", want)
	}

	pinnedAt := time.Now()
	if _, err := fleet[0].peer.ctl(ctlBin, "pin", "add", root, "--replication-min", "2", "--replication-max", "2", "--no-status"); err != nil {
		t.Fatal(err)
	}
	status := func(p *clusterPeer, c string) (pinStatus, error) {
		out, err := p.ctl(ctlBin, "status", c)
		if err != nil {
			return pinStatus{}, err
		}
		var st pinStatus
		return st, json.Unmarshal([]byte(out), &st)
	}
	var holders []*member
	var idle *member
	waitFor(t, 3*time.Minute, "pinned on 2 of 3 cluster peers and their shoal daemons", func() (bool, string) {
		st, err := status(fleet[0].peer, root)
		if err != nil {
			return false, err.Error()
		}
		on := st.pinnedOn()
		if len(on) != 2 {
			return false, fmt.Sprintf("pinned on %v, status %+v", on, st.PeerMap)
		}
		holders, idle = nil, nil
		for _, m := range fleet {
			if slices.Contains(on, m.peer.id) {
				holders = append(holders, m)
			} else {
				idle = m
			}
		}
		for _, h := range holders {
			if !holdsDAG(held(t, h.rpcAddr), want, root) {
				return false, "cluster says pinned on " + h.peer.id + "; its shoal daemon does not hold the whole DAG yet"
			}
		}
		return true, ""
	})
	t.Logf("replication 2/3 of %s (%d B) reached %s after pin add", root, len(data), time.Since(pinnedAt).Round(time.Millisecond))
	if h := held(t, idle.rpcAddr); holdsAny(h, want) {
		t.Fatalf("the third shoal daemon (cluster peer %s, not allocated) holds blocks of %s: %v", idle.peer.id, root, h)
	}
	// The bytes came over shoal's swarm (the cluster moves no bytes for a
	// pin): each holder received at least the file's bytes from its shoal
	// peers, the seeder among them.
	for _, h := range holders {
		var peers []struct {
			ID      string `json:"peer"`
			BytesIn uint64 `json:"bytes_in"`
		}
		if err := json.Unmarshal([]byte(h.shoal.cli("peers", "--json")), &peers); err != nil {
			t.Fatalf("shoal peers --json: %v", err)
		}
		var in, fromSeed uint64
		for _, p := range peers {
			in += p.BytesIn
			if p.ID == seed.id {
				fromSeed = p.BytesIn
			}
		}
		if in < uint64(len(data)) || fromSeed == 0 {
			t.Fatalf("shoal %s received %d B over its swarm (%d B from the seeder) for a %d B file", h.shoal.id, in, fromSeed, len(data))
		}
	}

	// A holder dies: its cluster peer and its shoal daemon, at once.
	dead, alive := holders[0], holders[1]
	killedAt := time.Now()
	dead.peer.kill()
	_ = dead.shoal.cmd.Process.Kill()
	_ = dead.shoal.cmd.Wait()
	// Only one live peer decides the re-pin (the one closest to the
	// CID); the other learns the new allocation from the CRDT. The heal
	// is the cluster's view, from either live peer, of the pin on both,
	// and the third daemon holding the DAG. The view that came first
	// drives the rest of the test; the other must catch up below, when
	// it pins what that one adds.
	var ctlPeer *member
	waitFor(t, 3*time.Minute, "re-pinned on the third cluster peer after a holder died", func() (bool, string) {
		var views []string
		ctlPeer = nil
		for _, m := range []*member{alive, idle} {
			st, err := status(m.peer, root)
			if err != nil {
				views = append(views, m.peer.id+": "+err.Error())
				continue
			}
			on := st.pinnedOn()
			if slices.Equal(on, sortedIDs(alive.peer.id, idle.peer.id)) {
				ctlPeer = m
				break
			}
			views = append(views, fmt.Sprintf("%s sees pinned on %v, allocations %v", m.peer.id, on, st.Allocations))
		}
		if ctlPeer == nil {
			return false, strings.Join(views, "; ")
		}
		if !holdsDAG(held(t, idle.rpcAddr), want, root) {
			return false, "the third's shoal daemon does not hold the whole DAG yet"
		}
		return true, ""
	})
	t.Logf("healed (re-pinned on the third peer, the DAG fetched there) %s after the kill, as cluster peer %s sees it", time.Since(killedAt).Round(time.Millisecond), ctlPeer.peer.id)
	live := []*member{alive, idle}

	// ipfs-cluster-ctl add chunks the file itself and sends the blocks to
	// the allocated daemons (block/put), then pins: the CID must be the
	// one shoal computes, which is Kubo's with unixfs-v1-2025.
	src2 := filepath.Join(dir, "added.bin")
	data2 := randomFile(t, src2, 3<<20+7)
	wantCID := lastLine(seed.cli("cid", src2))
	out, err := ctlPeer.peer.ctl(ctlBin, "add", "--cid-version", "1", "--raw-leaves", "--chunker", "size-1048576",
		"--replication-min", "2", "--replication-max", "2", "--quieter", src2)
	if err != nil {
		t.Fatal(err)
	}
	type addOutput struct {
		CID string `json:"cid"`
	}
	outs, err := jsonValues[addOutput](out)
	if err != nil || len(outs) == 0 {
		t.Fatalf("ipfs-cluster-ctl add printed %q: %v", out, err)
	}
	added := outs[len(outs)-1]
	if added.CID != wantCID {
		t.Fatalf("ipfs-cluster-ctl add gave %s; shoal cid (Kubo's unixfs-v1-2025) gives %s", added.CID, wantCID)
	}
	waitFor(t, 2*time.Minute, "the added file pinned on both live peers", func() (bool, string) {
		st, err := status(ctlPeer.peer, added.CID)
		if err != nil {
			return false, err.Error()
		}
		on := st.pinnedOn()
		return slices.Equal(on, sortedIDs(alive.peer.id, idle.peer.id)), fmt.Sprintf("pinned on %v", on)
	})
	for _, m := range live {
		if got := rpc(t, m.rpcAddr, "cat?arg="+added.CID); !bytes.Equal(got, data2) {
			t.Fatalf("shoal %s cats %d B of the added file, differing from the %d B added", m.shoal.id, len(got), len(data2))
		}
		if h := held(t, m.rpcAddr); h[added.CID] != "recursive" {
			t.Fatalf("shoal %s does not pin the added file: %v", m.shoal.id, h)
		}
	}

	// pin rm unpins on every live daemon; the cluster's GC then frees
	// every block there.
	for _, c := range []string{root, added.CID} {
		if _, err := ctlPeer.peer.ctl(ctlBin, "pin", "rm", c, "--no-status"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Minute, "both pins removed from both live shoal daemons", func() (bool, string) {
		for _, m := range live {
			if h := held(t, m.rpcAddr); len(h) != 0 {
				return false, fmt.Sprintf("%s still pins %v", m.shoal.id, h)
			}
		}
		return true, ""
	})
	type repoStat struct{ NumObjects, RepoSize uint64 }
	var before []repoStat
	for _, m := range live {
		var rs repoStat
		if err := json.Unmarshal(rpc(t, m.rpcAddr, "repo/stat"), &rs); err != nil {
			t.Fatal(err)
		}
		if rs.NumObjects < 6 {
			t.Fatalf("shoal %s holds %d blocks before GC; the unpinned blocks should still be there", m.shoal.id, rs.NumObjects)
		}
		before = append(before, rs)
	}
	if _, err := ctlPeer.peer.ctl(ctlBin, "ipfs", "gc"); err != nil {
		t.Fatal(err)
	}
	for i, m := range live {
		var rs repoStat
		if err := json.Unmarshal(rpc(t, m.rpcAddr, "repo/stat"), &rs); err != nil {
			t.Fatal(err)
		}
		if rs.NumObjects != 0 {
			t.Fatalf("shoal %s holds %d blocks (%d B) after the cluster's GC, %d before; want none", m.shoal.id, rs.NumObjects, rs.RepoSize, before[i].NumObjects)
		}
	}
}

// randomFile writes n random bytes to path and returns them.
func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
