package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoalnet/shoal/internal/dockercli"
	"github.com/shoalnet/shoal/node"
)

// DockerOptions configure RunDocker.
type DockerOptions struct {
	// Image is a shoal image built from the repository's Dockerfile
	// (`make image` tags shoal:dev).
	Image    string
	Logger   *slog.Logger
	Progress func(Progress)
	Commit   string
	// PlainBitswap, SwarmAllPeers and MaxInflightSends are Options'
	// (the same numbers as a run in process): every daemon gets them in
	// the config.toml daemonConfig writes.
	PlainBitswap     bool
	SwarmAllPeers    bool
	MaxInflightSends int
}

// daemonConfig is the config.toml of every container's daemon: the
// settings the in-process runner gives its nodes (startNodeWith and
// run.start, over the same node.DefaultConfig), so that a plan run both
// ways runs one protocol with one configuration — the swarm extension,
// how many responses a node writes at once, QUIC only (the simulated
// hosts have no TCP), no mDNS, no fsync (the simulated stores are in
// memory) and the simulated hosts' connection limits. What it cannot
// match is named in bench/sim.md: the simulated hosts' connection
// grace period and their unlimited resource manager.
func daemonConfig(opts DockerOptions) string {
	return fmt.Sprintf(`# written by shoal sim --runner docker: the in-process runner's node settings
[network]
listen = ["/ip4/0.0.0.0/udp/%d/quic-v1"]
mdns = false
swarm_extension = %v

[store]
sync = false

[transfer]
swarm_all_peers = %v
max_inflight_sends = %d

[resources]
conns_low = %d
conns_high = %d
`, node.DefaultListenPort, !opts.PlainBitswap, opts.SwarmAllPeers, inflightSends(opts.MaxInflightSends), simConnsLow, simConnsHigh)
}

// RunDocker runs a plan's nodes as containers — real daemons with their
// own addresses on a Docker network created for the run — and drives them
// through their CLI (`docker exec`): seeders share the plan's content,
// fetchers fetch it at their join time and the bytes they wrote are
// hashed, churners are killed (`docker kill`) at their leave time. It
// returns the same Results as Run.
//
// Every container's link is shaped from the host to its group's
// up_mbit, down_mbit and latency_ms (containerLink: token buckets on both
// ends of its veth, packets held in an NFQUEUE for the latency), so T_min
// holds for a container run as for the in-process one; a partition drops
// packets between the sides' addresses inside each container. Shaping
// needs root on a Linux host. Each node's bytes are its veth's counters
// and its memory the peak RSS of its daemon. Byzantine and lookup nodes
// and the latency matrix are not run here: the plan is refused with the
// reason.
func RunDocker(ctx context.Context, p *Plan, opts DockerOptions) (*Results, error) {
	var res *Results
	err := runDocker(ctx, p, opts, func(d *dockerRun) { res = d.results() })
	return res, err
}

// runDocker is RunDocker: done sees the run (whose nodes tests inspect)
// after its last fetch, before its containers are removed.
func runDocker(ctx context.Context, p *Plan, opts DockerOptions, done func(*dockerRun)) error {
	if err := dockerSupports(p); err != nil {
		return err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := dockercli.Available(ctx); err != nil {
		return err
	}
	if err := shapingAvailable(); err != nil {
		return err
	}
	if _, err := dockercli.Run(ctx, nil, "image", "inspect", "--format", "{{.Id}}", opts.Image); err != nil {
		return fmt.Errorf("image %q not found (%v): build it with `make image`, or pass --image", opts.Image, err)
	}
	d := &dockerRun{plan: p, opts: opts, start: time.Now()}
	var tag [4]byte
	_, _ = rand.Read(tag[:])
	d.prefix = "shoalsim-" + hex.EncodeToString(tag[:])
	defer d.cleanup()
	if _, err := dockercli.Run(ctx, nil, "network", "create", "--internal", d.prefix); err != nil {
		return fmt.Errorf("creating the run's network: %w", err)
	}
	d.layout()
	if err := d.run(ctx); err != nil {
		return err
	}
	done(d)
	return nil
}

// dockerSupports refuses what the docker runner cannot do, naming it.
func dockerSupports(p *Plan) error {
	refuse := func(what string) error {
		return fmt.Errorf("%w: %s: the docker runner does not run %s yet; run the plan in process (without --runner docker)", ErrPlan, p.File, what)
	}
	for _, g := range p.Groups {
		if g.Role == RoleByzantine || g.Role == RoleLookup {
			return refuse(g.Role + " nodes (group " + g.Name + ")")
		}
		if g.Role == RoleSeeder && g.JoinS > 0 {
			return refuse("seeders that join late (group " + g.Name + ")")
		}
	}
	if len(p.Latency) > 0 {
		return refuse("a latency matrix")
	}
	if p.Transport == TransportLight {
		return fmt.Errorf("%w: %s: transport = %q: light nodes are simulated in process; containers run full daemons (remove the key or run without --runner docker)", ErrPlan, p.File, p.Transport)
	}
	return nil
}

// dockerNode is one node as a container: the plan's description of it
// and its record (member, whose mu guards running too), and its container.
type dockerNode struct {
	member
	container string
	addr      string // /ip4/.../udp/4040/quic-v1/p2p/...
	running   bool
	upAt      time.Time      // when its API first answered
	clink     *containerLink // nil until the container runs
	gone      bool           // killed: its counters and memory are kept below
	up, down  int64
	peakMem   int64
}

type dockerRun struct {
	plan   *Plan
	opts   DockerOptions
	prefix string
	start  time.Time
	nodes  []*dockerNode
	// members are the nodes' members, in the same order.
	members []*member
	root    string
	sum     string // sha256 of the content, hex
	samples []Sample

	load []float64 // hostLoad at the clock's start and the run's end

	partMu      sync.Mutex
	partitioned bool // a partition is in force
}

// layout gives every node of the plan (layoutNodes) a record and a
// container name.
func (d *dockerRun) layout() {
	for _, s := range layoutNodes(d.plan) {
		n := &dockerNode{container: d.prefix + "-" + s.name}
		n.init(s)
		d.nodes = append(d.nodes, n)
		d.members = append(d.members, &n.member)
	}
}

// cleanup removes the containers, then the network.
func (d *dockerRun) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var names []string
	for _, n := range d.nodes {
		names = append(names, n.container)
	}
	if len(names) > 0 {
		_, _ = dockercli.Run(ctx, nil, append([]string{"rm", "-f", "-v"}, names...)...)
	}
	for _, n := range d.nodes {
		n.mu.Lock()
		if err := n.clink.close(); err != nil {
			d.opts.Logger.Warn("sim docker: delaying packets", "node", n.name, "err", err)
		}
		n.mu.Unlock()
	}
	_, _ = dockercli.Run(ctx, nil, "network", "rm", d.prefix)
}

// shoal runs the CLI inside n's container against its own API.
func (n *dockerNode) shoal(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"exec", n.container, "/shoal"}, args...)
	return dockercli.Run(ctx, nil, append(full, "--api", "http://127.0.0.1:5080")...)
}

// startNode starts n's container (bootstrapping from boot, if any) and
// waits until its API answers; it records n's peer ID and address.
func (d *dockerRun) startNode(ctx context.Context, n *dockerNode, boot *dockerNode) error {
	args := []string{"create", "--name", n.container, "--hostname", n.name, "--network", d.prefix,
		d.opts.Image, "daemon", "--log-level", "warn"}
	if boot != nil {
		args = append(args, "--bootstrap", boot.addr)
	}
	if _, err := dockercli.Run(ctx, nil, args...); err != nil {
		return fmt.Errorf("creating the container of %s: %w", n.name, err)
	}
	// The daemon finds its config in its home and makes its key beside it.
	if err := dockercli.PutFile(ctx, n.container, "/data/", node.ConfigFile, []byte(daemonConfig(d.opts))); err != nil {
		return fmt.Errorf("writing the config of %s: %w", n.name, err)
	}
	if _, err := dockercli.Run(ctx, nil, "start", n.container); err != nil {
		return fmt.Errorf("starting %s: %w", n.name, err)
	}
	if err := d.shape(ctx, n); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := n.shoal(ctx, "id", "--json")
		if err == nil {
			var id struct {
				ID        string   `json:"id"`
				Addresses []string `json:"addresses"`
			}
			if err = json.Unmarshal([]byte(out), &id); err == nil {
				n.started(id.ID)
				n.mu.Lock()
				n.running, n.upAt = true, time.Now()
				for _, a := range id.Addresses {
					// QUIC, as the in-process runner's hosts speak.
					if strings.HasPrefix(a, "/ip4/") && !strings.HasPrefix(a, "/ip4/127.") && strings.HasSuffix(strings.Split(a, "/p2p/")[0], "/quic-v1") {
						n.addr = a
						if !strings.Contains(a, "/p2p/") {
							n.addr += "/p2p/" + id.ID
						}
						break
					}
				}
				n.mu.Unlock()
				if n.addr == "" {
					return fmt.Errorf("%s reports no container QUIC address: %v", n.name, id.Addresses)
				}
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			logs, _ := dockercli.Run(context.Background(), nil, "logs", "--tail", "20", n.container)
			return fmt.Errorf("%s did not start: %v; its log:\n%s", n.name, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run starts the seeders, shares the content, then starts every other
// node at its join time and fetches; it returns when every fetcher has
// ended or the plan's timeout has passed.
func (d *dockerRun) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, seconds(d.plan.TimeoutS))
	defer cancel()
	content := makeContent(d.plan.Seed, d.plan.ContentBytes())
	sum := sha256.Sum256(content)
	d.sum = hex.EncodeToString(sum[:])

	var boot *dockerNode
	for _, n := range d.nodes {
		if n.group.Role != RoleSeeder || n.joinAt > 0 {
			continue
		}
		if err := d.startNode(ctx, n, boot); err != nil {
			return err
		}
		if boot == nil {
			boot = n
		}
		if err := dockercli.PutFile(ctx, n.container, "/tmp/", "content.bin", content); err != nil {
			return fmt.Errorf("copying the content into %s: %w", n.name, err)
		}
		out, err := n.shoal(ctx, "share", "/tmp/content.bin")
		if err != nil {
			return fmt.Errorf("sharing on %s: %w", n.name, err)
		}
		lines := strings.Split(out, "\n")
		root := strings.TrimSpace(lines[len(lines)-1])
		if d.root != "" && root != d.root {
			return fmt.Errorf("%s shared the content as %s, the first seeder as %s", n.name, root, d.root)
		}
		d.root = root
		n.shared(true)
	}
	if boot == nil {
		return fmt.Errorf("%w: %s: the docker runner needs a seeder that is there from the start", ErrPlan, d.plan.File)
	}
	d.opts.Logger.Info("sim docker: content shared", "root", d.root)
	if err := d.startEarly(ctx, boot); err != nil {
		return err
	}
	// The DHT needs a moment before the first lookups find providers.
	select {
	case <-time.After(seconds(d.plan.SettleS)):
	case <-ctx.Done():
		return ctx.Err()
	}
	d.start = time.Now()
	d.load = append(d.load, hostLoad())

	var wg sync.WaitGroup
	for _, n := range d.nodes {
		wg.Go(func() { d.lifetime(ctx, n, boot) })
	}
	// The partition follows the plan's clock but does not hold the run
	// up once every fetcher is done.
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Go(func() { d.partition(pctx) })
	defer pwg.Wait()
	defer pcancel()
	progress := time.NewTicker(seconds(max(d.plan.SampleS, 1)))
	defer progress.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			d.report()
			d.load = append(d.load, hostLoad())
			return nil
		case <-progress.C:
			d.report()
		}
	}
}

// startEarly starts, all at once, the containers of every node that is
// not running yet — those that join at the plan's start and the late
// joiners alike — before the plan's clock starts. Starting a container
// takes real seconds (3.5-6 s on this busy machine) that a simulated
// node does not spend: started at their join times, nodes would begin
// their fetches seconds late, and the late joiners of a churn plan would
// arrive into a swarm further along than the plan has it (bench/sim.md).
// A node started early sits idle, its store empty, until its join time.
func (d *dockerRun) startEarly(ctx context.Context, boot *dockerNode) error {
	var wg sync.WaitGroup
	errs := make([]error, len(d.nodes))
	for i, n := range d.nodes {
		n.mu.Lock()
		running := n.running
		n.mu.Unlock()
		if running {
			continue
		}
		wg.Go(func() { errs[i] = d.startNode(ctx, n, boot) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lifetime starts n at its join time, fetches if it is a fetcher, and
// kills it at its leave time.
func (d *dockerRun) lifetime(ctx context.Context, n *dockerNode, boot *dockerNode) {
	n.mu.Lock()
	running := n.running // started in the setup (startEarly)
	n.mu.Unlock()
	if !sleepUntil(ctx, d.start.Add(n.joinAt)) {
		return
	}
	if !running {
		if err := d.startNode(ctx, n, boot); err != nil {
			n.failed(err)
			return
		}
	}
	fctx := ctx
	if n.leaveAt > 0 {
		var cancel context.CancelFunc
		fctx, cancel = context.WithDeadline(ctx, d.start.Add(n.leaveAt))
		defer cancel()
	}
	if n.fetches() {
		d.fetch(fctx, n)
	}
	if n.leaveAt > 0 && sleepUntil(ctx, d.start.Add(n.leaveAt)) {
		n.mu.Lock()
		n.snapshotLocked()
		n.gone = true
		n.mu.Unlock()
		if _, err := dockercli.Run(context.Background(), nil, "kill", n.container); err != nil {
			n.failed(err)
		}
		n.mu.Lock()
		n.leftAtLocked(time.Since(d.start).Seconds())
		n.mu.Unlock()
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return true
	case <-ctx.Done():
		return false
	}
}

// fetch runs `shoal fetch` on n until it succeeds (a node that has just
// joined may find no provider yet: it retries every second, as the
// in-process runner does) and checks the bytes it wrote.
func (d *dockerRun) fetch(ctx context.Context, n *dockerNode) {
	started := time.Now()
	n.mu.Lock()
	n.res.FetchStartS = started.Sub(d.start).Seconds()
	n.mu.Unlock()
	var out string
	for {
		var err error
		out, err = n.shoal(ctx, "fetch", d.root, "-o", "/tmp/fetched", "--force", "--json")
		if err == nil {
			break
		}
		n.retried(err)
		if !sleepUntil(ctx, time.Now().Add(time.Second)) {
			return
		}
	}
	var fr struct {
		Peers []struct {
			Peer  string `json:"peer"`
			Bytes int64  `json:"bytes"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &fr); err != nil {
		n.failed(fmt.Errorf("fetch --json: %w: %q", err, out))
		return
	}
	took := time.Since(started)
	// The fetch is done: check its bytes even if the node's leave time
	// (ctx's deadline) comes meanwhile; it is killed right after.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	got, err := dockercli.FileSHA256(hctx, n.container, "/tmp/fetched")
	if err == nil && got != d.sum {
		err = errContentDiffers
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fetchedLocked(took)
	n.checkedLocked(func() (bool, error) { return err == nil, err })
	n.res.BytesPerPeer = map[string]int64{}
	for _, p := range fr.Peers {
		n.res.BytesPerPeer[p.Peer] = p.Bytes
	}
}

// report takes a traffic sample (each node's veth counters) and tells
// the caller's Progress.
func (d *dockerRun) report() {
	s := Sample{T: time.Since(d.start).Seconds(), Up: make([]int64, len(d.nodes)), Down: make([]int64, len(d.nodes))}
	for i, n := range d.nodes {
		n.mu.Lock()
		s.Up[i], s.Down[i] = n.trafficLocked()
		n.mu.Unlock()
	}
	d.samples = append(d.samples, s)
	if d.opts.Progress != nil {
		d.opts.Progress(progress(s.T, d.members, func(i int) int64 { return s.Down[i] }))
	}
}

// results is the run's Results, the nodes' bytes and memory those of
// their links and daemons.
func (d *dockerRun) results() *Results {
	res := newResults(d.plan, "docker", d.opts.Commit, d.root, len(d.nodes))
	res.Description += " (docker runner: real containers, shaped links)"
	res.WallS = time.Since(d.start).Seconds()
	res.SimulatedS = res.WallS
	res.Samples = d.samples
	if !slices.Contains(d.load, -1) {
		res.HostLoad = d.load
	}
	var mem int64
	for _, n := range d.nodes {
		n.mu.Lock()
		n.snapshotLocked()
		n.res.BytesUp, n.res.BytesDown = n.up, n.down
		n.res.PeakMemBytes = uint64(n.peakMem)
		mem += n.peakMem
		n.mu.Unlock()
	}
	// Containers are separate processes: the run's peak is at most the
	// sum of their peaks.
	res.PeakMemBytes = uint64(mem)
	if len(d.nodes) > 0 {
		res.MemPerNode = res.PeakMemBytes / uint64(len(d.nodes))
	}
	finishResults(d.plan, res, d.members, false)
	return res
}

// shape attaches n's link and shapes it to its group's rates and
// latency; during a partition the new node is split off at once.
func (d *dockerRun) shape(ctx context.Context, n *dockerNode) error {
	l, err := attachLink(ctx, n.container)
	if err == nil {
		err = l.shape(ctx, n.nodeSpec.link.upMbit, n.nodeSpec.link.downMbit, n.nodeSpec.link.latency)
	}
	if err != nil {
		if l != nil {
			_ = l.close()
		}
		return fmt.Errorf("shaping the link of %s: %w", n.name, err)
	}
	n.mu.Lock()
	n.clink = l
	n.mu.Unlock()
	d.partMu.Lock()
	defer d.partMu.Unlock()
	if d.partitioned {
		return d.splitLocked(ctx)
	}
	return nil
}

// trafficLocked is n's bytes up and down so far: its veth's counters,
// or what they were when it was killed.
func (n *dockerNode) trafficLocked() (up, down int64) {
	if n.clink == nil || n.gone {
		return n.up, n.down
	}
	if u, dn, err := n.clink.counters(); err == nil {
		n.up, n.down = u, dn
	}
	return n.up, n.down
}

// snapshotLocked keeps n's counters and its daemon's peak memory while
// the container runs (before a kill, and at the end).
func (n *dockerNode) snapshotLocked() {
	if n.clink == nil || n.gone {
		return
	}
	n.trafficLocked()
	if m, err := n.clink.peakRSS(); err == nil {
		n.peakMem = max(n.peakMem, m)
	}
	if d := n.clink.delay; d != nil {
		if pk, mean, most := d.Late(); pk > 0 {
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			n.res.DelayLate = &DelayLate{Packets: pk, MeanMS: ms(mean), MaxMS: ms(most)}
		}
	}
}

// partition splits the running containers by the plan's side_a groups
// from at_s, and heals the split at heal_s.
func (d *dockerRun) partition(ctx context.Context) {
	pt := d.plan.Partition
	if pt == nil || !sleepUntil(ctx, d.start.Add(seconds(pt.AtS))) {
		return
	}
	d.partMu.Lock()
	d.partitioned = true
	if err := d.splitLocked(ctx); err != nil {
		d.opts.Logger.Error("sim docker: partition", "err", err)
	}
	d.partMu.Unlock()
	d.opts.Logger.Info("sim docker: partitioned", "at_s", time.Since(d.start).Seconds())
	if !sleepUntil(ctx, d.start.Add(seconds(pt.HealS))) {
		return
	}
	d.partMu.Lock()
	defer d.partMu.Unlock()
	d.partitioned = false
	for _, n := range d.nodes {
		n.mu.Lock()
		l, gone := n.clink, n.gone
		n.mu.Unlock()
		if l != nil && !gone {
			if err := l.unblock(ctx); err != nil {
				d.opts.Logger.Error("sim docker: healing the partition", "node", n.name, "err", err)
			}
		}
	}
	d.opts.Logger.Info("sim docker: healed", "at_s", time.Since(d.start).Seconds())
}

// splitLocked makes every running container drop the packets of the
// other side's containers. d.partMu is held.
func (d *dockerRun) splitLocked(ctx context.Context) error {
	sideA := map[string]bool{}
	for _, g := range d.plan.Partition.SideA {
		sideA[g] = true
	}
	type side struct {
		links []*containerLink
		ips   []string
	}
	var sides [2]side
	for _, n := range d.nodes {
		n.mu.Lock()
		l, gone := n.clink, n.gone
		n.mu.Unlock()
		if l == nil || gone {
			continue
		}
		i := 1
		if sideA[n.group.Name] {
			i = 0
		}
		sides[i].links = append(sides[i].links, l)
		sides[i].ips = append(sides[i].ips, l.ip)
	}
	for i, s := range sides {
		for _, l := range s.links {
			if err := l.block(ctx, sides[1-i].ips); err != nil {
				return err
			}
		}
	}
	return nil
}

// hostLoad is the host's 1-minute load average, or -1 where it cannot be
// read.
func hostLoad() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
