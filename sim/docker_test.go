package sim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/dockercli"
)

// TestDockerRunnerRefuses: what the docker runner cannot do is refused
// up front, naming it — no container is started.
func TestDockerRunnerRefuses(t *testing.T) {
	for plan, want := range map[string]string{"byzantine.toml": "byzantine nodes", "dht-lookup.toml": "lookup nodes", "partition.toml": "partitions"} {
		p := loadTestPlan(t, plan)
		_, err := RunDocker(context.Background(), p, DockerOptions{Image: "unused"})
		if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want ErrPlan naming %q", plan, err, want)
		}
	}
}

// TestDockerRunnerChurn runs the churn plan, shrunk, as containers: a
// seeder that leaves, leechers, churners killed mid-run, late joiners.
// Every fetcher that stays completes with the right bytes, the leaving
// nodes were killed, and the results are written as the in-process
// runner writes them. Skipped when no Docker engine answers.
func TestDockerRunnerChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and starts containers; skipped with -short")
	}
	ctx := testContext(t)
	if err := dockercli.Available(ctx); err != nil {
		t.Skipf("skipping the docker runner test: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The image the deploy tests use too: built once per content.
	image, _, err := dockercli.CachedImage(ctx, root, t.Logf)
	if err != nil {
		t.Fatal(err)
	}

	p := loadTestPlan(t, "churn.toml").Scale(2, 4)
	res, err := RunDocker(ctx, p, DockerOptions{Image: image, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Nodes {
		t.Logf("%-18s %-12s completed=%-5v ok=%-5v %.2fs left=%.1fs up=%d down=%d err=%s", n.ID, n.Role, n.Completed, n.BytesOK, n.CompleteS, n.LeftS, n.BytesUp, n.BytesDown, n.Error)
		switch {
		case n.Role == RoleLeecher || n.Role == RoleLateJoiner:
			if !n.Completed || !n.BytesOK {
				t.Errorf("%s did not complete with the right bytes: %s", n.ID, n.Error)
			}
		}
		if n.Group == "seeder-leaving" || n.Role == RoleChurner {
			if n.LeftS == 0 {
				t.Errorf("%s should have been killed at its leave time", n.ID)
			}
		}
	}
	if res.Mode != "docker" || res.Root == "" || res.TMinS == nil {
		t.Errorf("results: mode %q, root %q, T_min %v", res.Mode, res.Root, res.TMinS)
	}
	out := t.TempDir()
	if err := res.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteReport(out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.json", "report.html"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if left, _ := dockercli.Run(ctx, nil, "ps", "-a", "-q", "--filter", "name=shoalsim-"); left != "" {
		t.Errorf("containers left behind: %s", left)
	}
}

// testContext is t's context, ending a minute before the test binary's
// deadline (-timeout): a docker run out of time then fails with what it
// waited for and still removes its containers, rather than the binary
// panicking with them left running.
func testContext(t *testing.T) context.Context {
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-time.Minute))
		t.Cleanup(cancel)
	}
	return ctx
}
