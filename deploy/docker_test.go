package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/dockercli"
)

// apiURL is where every container's daemon answers, on its own loopback:
// the tests reach it with `docker exec`, so no port leaves the container.
const apiURL = "http://127.0.0.1:5080"

var (
	imageOnce sync.Once
	imageName string
	imageSkip string // why the Docker tests cannot run here, if they cannot
	imageErr  error  // why the image could not be built: the tests fail
)

// cleanupMargin is how long before the test binary's deadline (-timeout)
// the tests stop waiting on containers: time to print the nodes' logs and
// remove them. A test out of time then fails naming what it waited for,
// rather than the binary panicking with its containers left running.
const cleanupMargin = 45 * time.Second

// testContext is t's context, ending cleanupMargin before the deadline.
// Every wait on a container derives from it; without a deadline
// (-timeout 0) only the short per-command timeouts bound the waits.
func testContext(t *testing.T) context.Context {
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-cleanupMargin))
		t.Cleanup(cancel)
	}
	return ctx
}

// docker runs one docker command and returns its stdout; a failure carries
// the command and its stderr.
func docker(ctx context.Context, args ...string) (string, error) {
	return dockerIn(ctx, nil, args...)
}

func dockerIn(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// needImage skips t unless a Docker engine answers, and fails it unless
// the image exists: $SHOAL_DEPLOY_IMAGE, or the repository's image, built
// once per content and shared with the other test binaries of the run
// (dockercli.CachedImage).
func needImage(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() { prepareImage(testContext(t), t.Logf) })
	if imageSkip != "" {
		t.Skip(imageSkip)
	}
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageName
}

func prepareImage(ctx context.Context, logf func(string, ...any)) {
	if _, err := exec.LookPath("docker"); err != nil {
		imageSkip = "skipping multi-host tests: no docker command on PATH (install Docker to run them)"
		return
	}
	if _, err := docker(ctx, "info"); err != nil {
		imageSkip = fmt.Sprintf("skipping multi-host tests: the Docker engine does not answer `docker info` (%v)", err)
		return
	}
	if name := os.Getenv("SHOAL_DEPLOY_IMAGE"); name != "" {
		if _, err := docker(ctx, "image", "inspect", name); err != nil {
			imageErr = fmt.Errorf("SHOAL_DEPLOY_IMAGE=%s is not a local image: %v", name, err)
			return
		}
		imageName = name
		return
	}
	root, err := filepath.Abs("..")
	if err != nil {
		imageErr = err
		return
	}
	imageName, _, imageErr = dockercli.CachedImage(ctx, root, logf)
}

// cluster is a set of shoal containers on user-defined Docker networks with
// fixed addresses. Nodes 0 and 1 are every other node's bootstrap peers
// (and each other's), so any node can restart and find the swarm again.
type cluster struct {
	t      *testing.T
	ctx    context.Context // testContext(t): every wait derives from it
	image  string
	prefix string
	main   *dnet
	nets   []*dnet // every network created, main included
	nodes  []*dnode
}

// destroy removes the containers, then their volumes, then the networks
// (a network in use cannot be removed), each kind in one docker command.
func (c *cluster) destroy() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupMargin)
	defer cancel()
	var names, vols []string
	for _, d := range c.nodes {
		_, _ = docker(ctx, "unpause", d.name)
		if c.t.Failed() {
			if logs, err := exec.Command("docker", "logs", "--tail", "40", d.name).CombinedOutput(); err == nil {
				c.t.Logf("last logs of %s:\n%s", d.name, logs)
			}
		}
		names, vols = append(names, d.name), append(vols, d.volume)
	}
	if len(names) > 0 {
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, names...)...); err != nil && !strings.Contains(err.Error(), "No such container") {
			c.t.Logf("cleanup: %v", err)
		}
		if _, err := docker(ctx, append([]string{"volume", "rm", "-f"}, vols...)...); err != nil {
			c.t.Logf("cleanup: %v", err)
		}
	}
	for _, n := range c.nets {
		// The engine may still be detaching a removed container: retry.
		var err error
		for try := 0; try < 5; try++ {
			if _, err = docker(ctx, "network", "rm", n.name); err == nil || strings.Contains(err.Error(), "not found") {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			c.t.Logf("cleanup: %v", err)
		}
	}
}

// dnet is a Docker network with a /24 subnet; host i has base+i.
type dnet struct {
	name string
	base string // "10.x.y."
}

func (n *dnet) ip(i int) string { return fmt.Sprintf("%s%d", n.base, 10+i) }

// dnode is one shoal container and its home volume.
type dnode struct {
	c      *cluster
	i      int
	name   string
	volume string
	id     string
}

type clusterOptions struct {
	// uploadLimit is every node's --upload-limit in bytes/s (0: none).
	uploadLimit int64
}

func newCluster(t *testing.T, n int, o clusterOptions) *cluster {
	t.Helper()
	image := needImage(t)
	c := &cluster{t: t, ctx: testContext(t), image: image, prefix: fmt.Sprintf("shoaltest-%06x", mrand.IntN(1<<24))}
	t.Cleanup(c.destroy)
	c.main = c.newNetwork("net")
	for i := range n {
		c.nodes = append(c.nodes, &dnode{c: c, i: i, name: fmt.Sprintf("%s-n%d", c.prefix, i), volume: fmt.Sprintf("%s-v%d", c.prefix, i)})
	}
	// Homes first (their peer IDs are the bootstrap addresses), then the
	// daemons; each step runs on every node at once.
	c.parallel(func(d *dnode) error { return d.initHome() })
	// The bootstrap nodes start one after the other, as in a real rollout:
	// a node whose bootstrap peers do not answer yet only retries when the
	// DHT's periodic low-peers check runs (minutes later).
	for _, d := range c.nodes[:min(2, n)] {
		c.must(docker(c.ctx, d.runArgs(o)...))
		d.waitReady()
	}
	if n > 2 {
		c.parallel(func(d *dnode) error {
			if d.i < 2 {
				return nil
			}
			_, err := docker(c.ctx, d.runArgs(o)...)
			return err
		})
	}
	for _, d := range c.nodes {
		d.waitReady()
	}
	for _, d := range c.nodes {
		d.waitPeers(1)
	}
	return c
}

// parallel runs f on every node at once and fails the test on any error.
func (c *cluster) parallel(f func(d *dnode) error) {
	c.t.Helper()
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, d := range c.nodes {
		wg.Go(func() { errs[i] = f(d) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
}

// initHome creates the node's volume and initialises its home in it.
func (d *dnode) initHome() error {
	ctx := d.c.ctx
	if _, err := docker(ctx, "volume", "create", d.volume); err != nil {
		return err
	}
	out, err := docker(ctx, "run", "--rm", "--network", "none", "-v", d.volume+":/data", d.c.image, "init", "--json")
	if err != nil {
		return err
	}
	var init struct{ ID string }
	if err := json.Unmarshal([]byte(out), &init); err != nil || init.ID == "" {
		return fmt.Errorf("shoal init --json in %s: %q (%v)", d.volume, out, err)
	}
	d.id = init.ID
	return nil
}

// runArgs is the `docker run` of the node's daemon: fixed address, home
// volume, mDNS off, nodes 0 and 1 as bootstrap peers.
func (d *dnode) runArgs(o clusterOptions) []string {
	c := d.c
	args := []string{"run", "-d", "--name", d.name, "--hostname", d.name, "--network", c.main.name, "--ip", c.main.ip(d.i),
		"-v", d.volume + ":/data", c.image, "daemon", "--no-mdns", "--log-level", "warn"}
	for _, b := range c.nodes[:min(2, len(c.nodes))] {
		if b != d {
			args = append(args, "--bootstrap", fmt.Sprintf("/ip4/%s/tcp/4040/p2p/%s", c.main.ip(b.i), b.id))
		}
	}
	if o.uploadLimit > 0 {
		args = append(args, "--upload-limit", fmt.Sprint(o.uploadLimit))
	}
	return args
}

func (c *cluster) must(out string, err error) string {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// newNetwork creates an internal network (no route off the host) on a
// random 10.x.y.0/24 that no other network uses.
func (c *cluster) newNetwork(suffix string) *dnet {
	c.t.Helper()
	name := c.prefix + "-" + suffix
	var last error
	for range 10 {
		base := fmt.Sprintf("10.%d.%d.", 100+mrand.IntN(150), mrand.IntN(256))
		_, err := docker(c.ctx, "network", "create", "--internal", "--subnet", base+"0/24", name)
		if err == nil {
			n := &dnet{name: name, base: base}
			c.nets = append(c.nets, n)
			return n
		}
		last = err
	}
	c.t.Fatalf("creating network %s: %v", name, last)
	return nil
}

// shoal runs the CLI inside the node's container against its API.
func (d *dnode) shoal(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"exec", d.name, "/shoal"}, args...)
	return docker(ctx, append(full, "--api", apiURL)...)
}

// waitReady waits until the node's API answers with the expected peer ID.
func (d *dnode) waitReady() {
	d.c.t.Helper()
	start := time.Now()
	var last error
	for d.c.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(d.c.ctx, 5*time.Second)
		out, err := d.shoal(ctx, "id", "--json")
		cancel()
		if err == nil {
			var id struct{ ID string }
			if err = json.Unmarshal([]byte(out), &id); err == nil && id.ID == d.id {
				return
			}
			if err == nil {
				err = fmt.Errorf("peer id %s, want %s (home lost?)", id.ID, d.id)
			}
		}
		last = err
		sleep(d.c.ctx, 300*time.Millisecond)
	}
	d.c.t.Fatalf("%s not ready after %v, when the test ran out of time: %v", d.name, time.Since(start).Round(time.Second), last)
}

// peers returns the node's connections: peer ID -> remote address.
func (d *dnode) peers() (map[string]string, error) {
	ctx, cancel := context.WithTimeout(d.c.ctx, 10*time.Second)
	defer cancel()
	out, err := d.shoal(ctx, "peers", "--json")
	if err != nil {
		return nil, err
	}
	var ps []struct {
		ID      string `json:"peer"`
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		return nil, fmt.Errorf("peers --json of %s: %w", d.name, err)
	}
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.ID] = p.Address
	}
	return m, nil
}

// waitPeers waits until the node has at least n connections.
func (d *dnode) waitPeers(n int) {
	d.c.t.Helper()
	start := time.Now()
	var got map[string]string
	var err error
	for d.c.ctx.Err() == nil {
		if got, err = d.peers(); err == nil && len(got) >= n {
			return
		}
		sleep(d.c.ctx, 500*time.Millisecond)
	}
	d.c.t.Fatalf("%s has %d peers after %v, want at least %d, when the test ran out of time (%v)", d.name, len(got), time.Since(start).Round(time.Second), n, err)
}

// putFile writes data into the container at /data/<name>.
func (d *dnode) putFile(name string, data []byte) {
	d.c.t.Helper()
	if err := dockercli.PutFile(d.c.ctx, d.name, "/data/", name, data); err != nil {
		d.c.t.Fatal(err)
	}
}

// fileSHA256 hashes a file of the container, read with `docker cp`.
func (d *dnode) fileSHA256(path string) (string, error) {
	return dockercli.FileSHA256(d.c.ctx, d.name, path)
}

// share puts data into the node and shares it; it returns the root CID.
func (d *dnode) share(name string, data []byte) string {
	d.c.t.Helper()
	d.putFile(name, data)
	out := d.c.must(d.shoal(d.c.ctx, "share", "/data/"+name))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// fetchResult is `shoal fetch --json`.
type fetchResult struct {
	CID           string `json:"cid"`
	Size          uint64 `json:"size"`
	DurationMS    int64  `json:"duration_ms"`
	BytesReceived uint64 `json:"bytes_received"`
	Peers         []struct {
		Peer  string `json:"peer"`
		Bytes uint64 `json:"bytes"`
	} `json:"peers"`
}

// fetch fetches cid into /data/got-<cid> and returns the CLI's report and
// the sha256 of the file written.
func (d *dnode) fetch(ctx context.Context, cid string) (fetchResult, string, error) {
	var res fetchResult
	path := "/data/got-" + cid
	out, err := d.shoal(ctx, "fetch", cid, "-o", path, "--force", "--json")
	if err != nil {
		return res, "", err
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return res, "", fmt.Errorf("fetch --json on %s: %w: %q", d.name, err, out)
	}
	sum, err := d.fileSHA256(path)
	return res, sum, err
}

// lsEntry is one line of `shoal ls --json`.
type lsEntry struct {
	CID    string `json:"cid"`
	Size   uint64 `json:"size"`
	Pinned bool   `json:"pinned"`
}

func (d *dnode) ls() ([]lsEntry, error) {
	ctx, cancel := context.WithTimeout(d.c.ctx, 10*time.Second)
	defer cancel()
	out, err := d.shoal(ctx, "ls", "--json")
	if err != nil {
		return nil, err
	}
	var list []lsEntry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("ls --json on %s: %w", d.name, err)
	}
	return list, nil
}

// randomBytes is n bytes no two runs share (so no node holds them already).
func randomBytes(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
