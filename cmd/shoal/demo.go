package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var nodes int
	var sizeMiB int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "start a small local swarm, share a sample file and fetch it on every node",
		Long: `demo starts a swarm of shoal nodes on 127.0.0.1, each with its own home,
API, dashboard and gateway. The first node is the bootstrap peer, the
second shares a generated sample file, and all the others fetch it at once,
from the seeder and from each other. It prints what each node got from whom,
the dashboard and gateway URLs, and runs until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 3 || nodes > 64 {
				return fmt.Errorf("--nodes %d: use 3 to 64", nodes)
			}
			if sizeMiB < 1 || sizeMiB > 4096 {
				return fmt.Errorf("--size-mib %d: use 1 to 4096", sizeMiB)
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), nodes, int64(sizeMiB)<<20, keep)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 5, "nodes in the swarm (3 to 64)")
	cmd.Flags().IntVar(&sizeMiB, "size-mib", 64, "size of the sample file in MiB")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the nodes' homes (printed) instead of deleting them on exit")
	return cmd
}

type demoNode struct {
	n     *node.Node
	front *httpFront
	home  string
}

func runDemo(ctx context.Context, out io.Writer, count int, size int64, keep bool) error {
	dir, err := os.MkdirTemp("", "shoal-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var swarm []*demoNode
	defer func() {
		for _, d := range swarm {
			d.front.shutdown()
			d.n.Close()
		}
	}()
	fmt.Fprintf(out, "starting %d nodes on 127.0.0.1 (homes in %s)\n", count, dir)
	var boot string
	for i := range count {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i))
		cfg := node.DefaultConfig(home)
		cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		cfg.Network.MDNS = false
		cfg.Store.Sync = false
		cfg.API.Addr, cfg.API.GatewayAddr = "127.0.0.1:0", "127.0.0.1:0"
		if i == 0 {
			// The first node gets the default ports when they are free, so
			// its dashboard is where the README says.
			cfg.API.Addr, cfg.API.GatewayAddr = freeOr("127.0.0.1:5080"), freeOr("127.0.0.1:8080")
		} else {
			cfg.Network.Bootstrap = []string{boot}
		}
		cfg.Logger = log
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		n, err := node.New(cfg)
		if err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			n.Close()
			return err
		}
		front, err := startHTTP(n, cfg, log)
		if err != nil {
			n.Close()
			return err
		}
		swarm = append(swarm, &demoNode{n: n, front: front, home: home})
		if i == 0 {
			boot = n.Info().Addresses[0]
		}
	}

	seeder := swarm[1]
	sample := make([]byte, size)
	fillSample(sample)
	t0 := time.Now()
	res, err := seeder.n.AddFile(ctx, bytes.NewReader(sample))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node1 shared a %d MiB sample file in %v\n  cid: %s\n", size>>20, time.Since(t0).Round(time.Millisecond), res.CID)

	fmt.Fprintf(out, "nodes 2..%d fetch it at once (found through the DHT, swarming among themselves)\n", count-1)
	var wg sync.WaitGroup
	results := make([]node.TransferInfo, count)
	errs := make([]error, count)
	for i := 2; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := swarm[i].n.Fetch(ctx, res.CID, "demo")
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = tr.Err()
			results[i] = tr.Info()
		}()
	}
	wg.Wait()
	names := map[string]string{}
	for i, d := range swarm {
		names[d.n.Info().ID] = fmt.Sprintf("node%d", i)
	}
	for i := 2; i < count; i++ {
		if errs[i] != nil {
			fmt.Fprintf(out, "  node%d: failed: %v\n", i, errs[i])
			continue
		}
		r := results[i]
		fmt.Fprintf(out, "  node%d: %d MiB in %v (%.0f MiB/s), from:", i, r.Size>>20,
			r.Finished.Sub(r.Started).Round(time.Millisecond), r.RateBps/(1<<20))
		for _, p := range r.Peers {
			fmt.Fprintf(out, " %s %.0f%%", names[p.Peer], 100*float64(p.Bytes)/float64(max(r.BytesReceived, 1)))
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "\nthe swarm is running:")
	for i, d := range swarm {
		fmt.Fprintf(out, "  node%d  dashboard %s/   gateway %s/ipfs/%s\n", i, d.front.apiURL, d.front.gwURL, res.CID)
	}
	fmt.Fprintf(out, "\nto use node0 from the CLI: shoal --home %s peers\n", swarm[0].home)
	if keep {
		fmt.Fprintf(out, "homes are kept in %s\n", dir)
	}
	fmt.Fprintln(out, "press Ctrl-C to stop")
	for _, d := range swarm {
		if err := writeHomeFile(filepath.Join(d.home, APIFile), []byte(d.front.apiURL+"\n")); err != nil {
			return err
		}
	}
	<-ctx.Done()
	fmt.Fprintln(out, "stopping the swarm")
	return nil
}

// fillSample fills b with reproducible pseudo-random bytes.
func fillSample(b []byte) {
	r := rand.New(rand.NewPCG(42, 4242))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}
