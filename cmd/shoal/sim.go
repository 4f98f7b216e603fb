package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/sim"
)

func newSimCmd(g *globalFlags) *cobra.Command {
	var (
		out      string
		scale    int
		maxMiB   float64
		verbose  bool
		realTime bool
		runner   string
		image    string
		swarmAll bool
		plain    bool
		inflight int
		light    bool
	)
	cmd := &cobra.Command{
		Use:   "sim PLAN",
		Short: "run a simulation plan: many real shoal nodes over shaped links, in this process (or as containers: --runner docker)",
		Long: `sim runs a plan (a TOML file such as sim/plans/flash-crowd.toml): every
simulated node is a real shoal node (DHT, block exchange, in-memory store)
on a simulated QUIC network with the plan's bandwidths and latencies. It
writes results.json and a self-contained report.html into --out, prints a
summary with the Kumar-Ross bound T_min and the achieved p50/p99 as
multiples of it, and exits non-zero when an expectation fails.

By default the simulation runs in virtual time: the clock only moves
when every node is waiting, so simulated seconds cost nothing, the
result does not depend on how busy the machine is, and a plan takes as
long as its CPU work. --real-time paces the simulated links by the
machine's clock instead (calibration: a plan takes at least as long as
its transfers, and a busy CPU slows the simulated network). Progress
goes to stderr: simulated time, wall time, fetchers complete of total
and bytes received (one line every few seconds when stderr is not a
terminal). --max-per-group and --max-content-mib run a plan smaller.

With --runner docker every node is a container of --image (make image
builds shoal:dev) on a Docker network made for the run, driven through its
CLI, in real time. Each container's link is shaped from the host to its
group's rates and latency (tc token buckets on both ends of its veth, and
its packets held for the latency in an NFQUEUE), and a partition drops
packets between the sides; this needs root on Linux. Every daemon gets
the in-process nodes' settings in its config.toml (swarm extension,
--max-inflight-sends, QUIC only, connection limits), so a plan run both
ways runs one configuration. Plans with byzantine
or lookup nodes or latency matrices are refused.

With --light (or transport = "light" in the plan) every node is a light
node: the same shoal node (fetch scheduler, Bitswap server, swarm
extension, DHT) on the same libp2p host, but its connections are
in-process streams through the plan's shaped links (uplink and downlink
per node, shared by all its connections; latency per pair) instead of
QUIC and TLS over simulated packets. T_min means the same; the wire
bytes are the bytes written to streams (no packet headers, no
handshakes). bench/sim.md compares both on the same plans.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runner != "process" && runner != "docker" {
				return fmt.Errorf("--runner %q: want process (every node in this process, simulated links) or docker (a container per node)", runner)
			}
			if light && runner != "process" {
				return fmt.Errorf("--light runs light nodes in this process; containers (--runner %s) run full daemons: drop one of the two", runner)
			}
			p, err := sim.LoadPlan(args[0])
			if err != nil {
				return err
			}
			if scale > 0 || maxMiB > 0 {
				if scale <= 0 {
					scale = 1 << 30
				}
				if maxMiB <= 0 {
					maxMiB = p.ContentMiB
				}
				p = p.Scale(scale, maxMiB)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating the output directory %s: %w", out, err)
			}
			log := slog.New(slog.DiscardHandler)
			if verbose {
				log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			stderr := cmd.ErrOrStderr()
			prog := newSimProgress(stderr)
			res, err := runSimPlan(cmd.Context(), p, runner, realTime, image, stderr, sim.Options{
				Logger: log, Commit: buildVersion().Commit, Progress: prog.show, SwarmAllPeers: swarmAll, PlainBitswap: plain,
				MaxInflightSends: inflight, Light: light,
			})
			prog.finish()
			if err != nil {
				return fmt.Errorf("running %s: %w", args[0], err)
			}
			if err := res.WriteJSON(out); err != nil {
				return err
			}
			if err := res.WriteReport(out); err != nil {
				return err
			}
			if g.json {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(res); err != nil {
					return err
				}
			} else {
				res.WriteSummary(cmd.OutOrStdout())
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/results.json and %s/report.html\n", out, out)
			}
			if cmd.Context().Err() != nil {
				return fmt.Errorf("plan %s: interrupted after %.1f s simulated; the results so far are in %s", p.Name, res.SimulatedS, out)
			}
			if !res.Pass {
				return fmt.Errorf("plan %s: an expectation failed (see %s/report.html)", p.Name, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "sim-out", "directory for results.json and report.html")
	cmd.Flags().IntVar(&scale, "max-per-group", 0, "shrink every group to at most this many nodes (0 = as planned)")
	cmd.Flags().Float64Var(&maxMiB, "max-content-mib", 0, "shrink the content to at most this many MiB (0 = as planned)")
	cmd.Flags().BoolVar(&realTime, "real-time", false, "pace the simulated links by the machine's clock instead of virtual time (calibration; --runner process)")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log every node's debug output to stderr")
	cmd.Flags().StringVar(&runner, "runner", "process", "process (every node in this process, on simulated links) or docker (a container per node on shaped links; needs root)")
	cmd.Flags().BoolVar(&swarmAll, "swarm-all-peers", false, "treat every peer as a shoal swarm peer for upload slots (choking, origin mode), as if every pair negotiated the swarm extension")
	cmd.Flags().BoolVar(&plain, "plain-bitswap", false, "turn the shoal swarm extension off in every node: peers speak plain Bitswap 1.2.0 to each other, as with Kubo")
	cmd.Flags().IntVar(&inflight, "max-inflight-sends", 0, "Bitswap responses every node writes at once (transfer.max_inflight_sends; 0 = the simulator's 4, where a daemon's default is 32), in process and in containers alike")
	cmd.Flags().BoolVar(&light, "light", false, "light nodes: the same node code (scheduler, server, swarm extension, DHT) on in-process streams through the plan's shaped links, without QUIC, TLS or packets; a fraction of the CPU and memory of full nodes, for plans of hundreds of nodes (as transport = \"light\" in the plan)")
	cmd.Flags().StringVar(&image, "image", "shoal:dev", "with --runner docker: the shoal image to run (make image builds shoal:dev)")
	return cmd
}

// runSimPlan runs p with the chosen runner: in this process in virtual
// time (or real time), or as containers.
func runSimPlan(ctx context.Context, p *sim.Plan, runner string, realTime bool, image string, stderr io.Writer, opts sim.Options) (*sim.Results, error) {
	switch runner {
	case "process":
		if realTime {
			opts.Mode = "real"
			return sim.Run(ctx, p, opts)
		}
		opts.Mode = "virtual"
		var res *sim.Results
		err := inVirtualTime(ctx, stderr, func(ctx context.Context) error {
			var err error
			res, err = sim.Run(ctx, p, opts)
			return err
		})
		return res, err
	case "docker":
		return sim.RunDocker(ctx, p, sim.DockerOptions{
			Image: image, Logger: opts.Logger, Commit: opts.Commit, Progress: opts.Progress,
			PlainBitswap: opts.PlainBitswap, SwarmAllPeers: opts.SwarmAllPeers, MaxInflightSends: opts.MaxInflightSends,
		})
	}
	return nil, fmt.Errorf("unknown runner %q", runner)
}

// simProgress prints a run's progress on stderr: one line rewritten in
// place on a terminal, otherwise a line every few seconds of wall time
// (and the last state at the end). The wall clock is sim.WallNow:
// inside a virtual-time run time.Now is simulated.
type simProgress struct {
	w       io.Writer
	tty     bool
	start   time.Time
	shown   time.Time // wall time of the last line
	last    sim.Progress
	pending bool // last is not on screen yet
}

func newSimProgress(w io.Writer) *simProgress {
	now := sim.WallNow()
	return &simProgress{w: w, tty: isTerminal(w), start: now, shown: now.Add(-time.Hour)}
}

// every is how often a line is printed: often enough to watch on a
// terminal, a line per 5 s in a log.
func (p *simProgress) every() time.Duration {
	if p.tty {
		return 200 * time.Millisecond
	}
	return 5 * time.Second
}

func (p *simProgress) show(pr sim.Progress) {
	p.last, p.pending = pr, true
	if now := sim.WallNow(); now.Sub(p.shown) >= p.every() {
		p.print(now)
	}
}

func (p *simProgress) print(now time.Time) {
	pr := p.last
	line := fmt.Sprintf("sim %7.1fs  wall %6.1fs  %d/%d complete  %.1f MiB received",
		pr.SimS, now.Sub(p.start).Seconds(), pr.Completed, pr.Fetchers, float64(pr.BytesDown)/(1<<20))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s   ", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.shown, p.pending = now, false
}

// finish prints the last state if it is not on screen and ends the
// terminal line.
func (p *simProgress) finish() {
	if p.pending {
		p.print(sim.WallNow())
	}
	if p.tty && !p.shown.Before(p.start) {
		fmt.Fprintln(p.w)
	}
}
