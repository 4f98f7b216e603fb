package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/sim"
)

func newSimCmd(g *globalFlags) *cobra.Command {
	var (
		out     string
		scale   int
		maxMiB  float64
		verbose bool
		runner  string
		image   string
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

From the CLI the simulation runs in real time: simulated links are paced
by the machine's clock, so a plan takes at least as long as its transfers
and a busy CPU slows the simulated network (use it for calibration, and
at sizes this machine can carry). Virtual time, deterministic and fast
for hundreds of nodes, needs a testing/synctest bubble, which only
"go test" provides: run a plan there with
  SHOAL_SIM_PLAN=$PWD/sim/plans/flash-crowd.toml SHOAL_SIM_OUT=DIR go test ./sim -run TestPlanFromEnv -timeout 0
(an absolute path: go test runs in the sim directory)

With --runner docker every node is a container of --image (make image
builds shoal:dev) on a Docker network made for the run, driven through its
CLI; links are not shaped, and plans with byzantine or lookup nodes,
latency matrices or partitions are refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			start := time.Now()
			progress := func(pr sim.Progress) {
				fmt.Fprintf(stderr, "\r%6.1fs  %d/%d complete  %.1f MiB received  (wall %s)   ",
					pr.SimS, pr.Completed, pr.Fetchers, float64(pr.BytesDown)/(1<<20), time.Since(start).Round(time.Second))
			}
			var res *sim.Results
			switch runner {
			case "process":
				res, err = sim.Run(cmd.Context(), p, sim.Options{
					Logger: log, Mode: "real", Commit: buildVersion().Commit, Progress: progress,
				})
			case "docker":
				res, err = sim.RunDocker(cmd.Context(), p, sim.DockerOptions{
					Image: image, Logger: log, Commit: buildVersion().Commit, Progress: progress,
				})
			default:
				return fmt.Errorf("--runner %q: want process (every node in this process, simulated links) or docker (a container per node)", runner)
			}
			fmt.Fprintln(stderr)
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
			if !res.Pass {
				return fmt.Errorf("plan %s: an expectation failed (see %s/report.html)", p.Name, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "sim-out", "directory for results.json and report.html")
	cmd.Flags().IntVar(&scale, "max-per-group", 0, "shrink every group to at most this many nodes (0 = as planned)")
	cmd.Flags().Float64Var(&maxMiB, "max-content-mib", 0, "shrink the content to at most this many MiB (0 = as planned)")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log every node's debug output to stderr")
	cmd.Flags().StringVar(&runner, "runner", "process", "process (every node in this process, on simulated links) or docker (a container per node, real addresses, links not shaped)")
	cmd.Flags().StringVar(&image, "image", "shoal:dev", "with --runner docker: the shoal image to run (make image builds shoal:dev)")
	return cmd
}
