package sim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/shoalnet/shoal/internal/dockercli"
)

// DockerOptions configure RunDocker.
type DockerOptions struct {
	// Image is a shoal image built from the repository's Dockerfile
	// (`make image` tags shoal:dev).
	Image    string
	Logger   *slog.Logger
	Progress func(Progress)
	Commit   string
}

// RunDocker runs a plan's nodes as containers — real daemons with their
// own addresses on a Docker network created for the run — and drives them
// through their CLI (`docker exec`): seeders share the plan's content,
// fetchers fetch it at their join time and the bytes they wrote are
// hashed, churners are killed (`docker kill`) at their leave time. It
// returns the same Results as Run.
//
// Links are not shaped (the image has no tc): the network is the host's
// bridge, so completion times are those of real, fast links, while T_min
// is still computed from the plan's links. Byzantine and lookup nodes,
// the latency matrix and partitions are not run here: the plan is
// refused with the reason.
func RunDocker(ctx context.Context, p *Plan, opts DockerOptions) (*Results, error) {
	if err := dockerSupports(p); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := dockercli.Available(ctx); err != nil {
		return nil, err
	}
	if _, err := dockercli.Run(ctx, nil, "image", "inspect", "--format", "{{.Id}}", opts.Image); err != nil {
		return nil, fmt.Errorf("image %q not found (%v): build it with `make image`, or pass --image", opts.Image, err)
	}
	d := &dockerRun{plan: p, opts: opts, start: time.Now()}
	var tag [4]byte
	_, _ = rand.Read(tag[:])
	d.prefix = "shoalsim-" + hex.EncodeToString(tag[:])
	defer d.cleanup()
	if _, err := dockercli.Run(ctx, nil, "network", "create", "--internal", d.prefix); err != nil {
		return nil, fmt.Errorf("creating the run's network: %w", err)
	}
	d.layout()
	if err := d.run(ctx); err != nil {
		return nil, err
	}
	return d.results(), nil
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
	if p.Partition != nil {
		return refuse("partitions")
	}
	return nil
}

type dockerNode struct {
	name      string // in the plan: group-i
	container string
	group     *Group
	joinAt    time.Duration
	leaveAt   time.Duration // 0: stays
	addr      string        // /ip4/.../tcp/4040/p2p/...

	mu      sync.Mutex
	res     NodeResult
	running bool
}

type dockerRun struct {
	plan   *Plan
	opts   DockerOptions
	prefix string
	start  time.Time
	nodes  []*dockerNode
	root   string
	sum    string // sha256 of the content, hex
}

func (d *dockerRun) layout() {
	for gi := range d.plan.Groups {
		g := &d.plan.Groups[gi]
		for i := range g.Count {
			name := fmt.Sprintf("%s-%d", g.Name, i)
			n := &dockerNode{name: name, container: d.prefix + "-" + name, group: g, joinAt: seconds(g.joinS(i))}
			if g.LeaveS > 0 {
				n.leaveAt = seconds(g.LeaveS)
			}
			n.res = NodeResult{ID: name, Group: g.Name, Role: g.Role}
			d.nodes = append(d.nodes, n)
		}
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
	args := []string{"run", "-d", "--name", n.container, "--hostname", n.name, "--network", d.prefix,
		d.opts.Image, "daemon", "--no-mdns", "--log-level", "warn"}
	if boot != nil {
		args = append(args, "--bootstrap", boot.addr)
	}
	if _, err := dockercli.Run(ctx, nil, args...); err != nil {
		return fmt.Errorf("starting %s: %w", n.name, err)
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
				n.mu.Lock()
				n.res.PeerID, n.running = id.ID, true
				for _, a := range id.Addresses {
					if strings.HasPrefix(a, "/ip4/") && !strings.HasPrefix(a, "/ip4/127.") && strings.Contains(a, "/tcp/") {
						n.addr = a
						if !strings.Contains(a, "/p2p/") {
							n.addr += "/p2p/" + id.ID
						}
						break
					}
				}
				n.mu.Unlock()
				if n.addr == "" {
					return fmt.Errorf("%s reports no container TCP address: %v", n.name, id.Addresses)
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
		n.res.Completed, n.res.BytesOK = true, true
	}
	if boot == nil {
		return fmt.Errorf("%w: %s: the docker runner needs a seeder that is there from the start", ErrPlan, d.plan.File)
	}
	d.opts.Logger.Info("sim docker: content shared", "root", d.root)
	// The DHT needs a moment before the first lookups find providers.
	select {
	case <-time.After(seconds(d.plan.SettleS)):
	case <-ctx.Done():
		return ctx.Err()
	}
	d.start = time.Now()

	var wg sync.WaitGroup
	for _, n := range d.nodes {
		wg.Go(func() { d.lifetime(ctx, n, boot) })
	}
	progress := time.NewTicker(seconds(max(d.plan.SampleS, 1)))
	defer progress.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			d.report()
			return nil
		case <-progress.C:
			d.report()
		}
	}
}

// lifetime starts n at its join time, fetches if it is a fetcher, and
// kills it at its leave time.
func (d *dockerRun) lifetime(ctx context.Context, n *dockerNode, boot *dockerNode) {
	n.mu.Lock()
	running := n.running // a seeder, started and sharing since the setup
	n.mu.Unlock()
	if !running {
		if !sleepUntil(ctx, d.start.Add(n.joinAt)) {
			return
		}
		if err := d.startNode(ctx, n, boot); err != nil {
			n.setErr(err)
			return
		}
	}
	fctx := ctx
	if n.leaveAt > 0 {
		var cancel context.CancelFunc
		fctx, cancel = context.WithDeadline(ctx, d.start.Add(n.leaveAt))
		defer cancel()
	}
	if IsFetcherRole(n.group.Role) {
		d.fetch(fctx, n)
	}
	if n.leaveAt > 0 && sleepUntil(ctx, d.start.Add(n.leaveAt)) {
		if _, err := dockercli.Run(context.Background(), nil, "kill", n.container); err != nil {
			n.setErr(err)
		}
		n.mu.Lock()
		n.res.LeftS = time.Since(d.start).Seconds()
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
	var out string
	for {
		var err error
		out, err = n.shoal(ctx, "fetch", d.root, "-o", "/tmp/fetched", "--force", "--json")
		if err == nil {
			break
		}
		n.mu.Lock()
		n.res.Error = err.Error()
		n.res.Retries++
		n.mu.Unlock()
		if !sleepUntil(ctx, time.Now().Add(time.Second)) {
			n.setErr(err)
			return
		}
	}
	var fr struct {
		BytesReceived int64 `json:"bytes_received"`
		Peers         []struct {
			Peer  string `json:"peer"`
			Bytes int64  `json:"bytes"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &fr); err != nil {
		n.setErr(fmt.Errorf("fetch --json: %w: %q", err, out))
		return
	}
	el := time.Since(started).Seconds()
	// The fetch is done: check its bytes even if the node's leave time
	// (ctx's deadline) comes meanwhile; it is killed right after.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	got, err := dockercli.FileSHA256(hctx, n.container, "/tmp/fetched")
	n.mu.Lock()
	defer n.mu.Unlock()
	n.res.Completed, n.res.CompleteS = true, el
	n.res.BytesOK = err == nil && got == d.sum
	n.res.Error = ""
	if err != nil {
		n.res.Error = err.Error()
	}
	n.res.BytesDown = fr.BytesReceived
	n.res.BytesPerPeer = map[string]int64{}
	for _, p := range fr.Peers {
		n.res.BytesPerPeer[p.Peer] = p.Bytes
	}
}

func (n *dockerNode) setErr(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.res.Error == "" {
		n.res.Error = err.Error()
	}
}

func (d *dockerRun) report() {
	if d.opts.Progress == nil {
		return
	}
	var pr Progress
	pr.SimS = time.Since(d.start).Seconds()
	for _, n := range d.nodes {
		if !IsFetcherRole(n.group.Role) {
			continue
		}
		pr.Fetchers++
		n.mu.Lock()
		if n.res.Completed {
			pr.Completed++
		}
		pr.BytesDown += n.res.BytesDown
		n.mu.Unlock()
	}
	d.opts.Progress(pr)
}

// results names peers by node, credits uploads from the fetchers'
// per-peer bytes, and evaluates the plan's expectations.
func (d *dockerRun) results() *Results {
	p := d.plan
	names := map[string]string{}
	for _, n := range d.nodes {
		if n.res.PeerID != "" {
			names[n.res.PeerID] = n.name
		}
	}
	up := map[string]int64{}
	for _, n := range d.nodes {
		named := map[string]int64{}
		for id, b := range n.res.BytesPerPeer {
			name := nameOr(names, id)
			named[name] += b
			up[name] += b
		}
		if len(named) > 0 {
			n.res.BytesPerPeer = named
		}
	}
	res := &Results{
		Plan: p.Name, PlanFile: p.File, Description: p.Description + " (docker runner: real containers, links not shaped)",
		Seed: p.Seed, Commit: d.opts.Commit, Mode: "docker", GoVersion: runtime.Version(),
		FinishedAt: time.Now().UTC().Format(time.RFC3339), WallS: time.Since(d.start).Seconds(),
		SimulatedS: time.Since(d.start).Seconds(), NodeCount: len(d.nodes), ContentBytes: p.ContentBytes(),
		Root: d.root,
	}
	for _, n := range d.nodes {
		nr := n.res
		nr.BytesUp = up[n.name]
		res.Nodes = append(res.Nodes, nr)
	}
	summarize(p, res)
	return res
}
