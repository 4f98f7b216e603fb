package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/testbin"
)

// fleetMarker precedes the README's "Running a fleet" walk-through.
const fleetMarker = "<!-- fleet:"

// fleetPortBase picks a base such that base+1 … base+80 are free on
// 127.0.0.1 now (the walk-through's ports are base plus 1 to 73).
func fleetPortBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(400)*100
		free := true
		for p := base + 1; p <= base+80 && free; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free range of 80 ports on 127.0.0.1 for the fleet walk-through")
	return 0
}

// TestREADMEFleet runs the README's fleet walk-through as printed, with
// bash, shoal and IPFS Cluster's commands first on PATH, in a temporary
// directory. Only /tmp/ (to the test's directory) and the port base are
// rewritten. The CID the cluster's add prints must be the one shoal cid
// prints, and the status it ends with must show the file pinned on two
// of the three nodes.
func TestREADMEFleet(t *testing.T) {
	service, _ := clusterBinaries(t) // ipfs-cluster-ctl is beside it
	bin := shoalBinary(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("the walk-through is a bash script; no bash here")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := readmeBlock(t, readme, fleetMarker)
	dir := t.TempDir()
	if !strings.Contains(block, "base=15000 ") {
		t.Fatalf("the fleet walk-through no longer sets base=15000:\n%s", block)
	}
	script := strings.Replace(block, "base=15000 ", fmt.Sprintf("base=%d ", fleetPortBase(t)), 1)
	script = strings.ReplaceAll(script, "/tmp/", dir+"/")
	if err := os.MkdirAll(filepath.Join(dir, "fleet"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 1; i <= 3; i++ {
			stopPIDFile(t, filepath.Join(dir, "fleet", fmt.Sprintf("cluster%d.pid", i)))
			stopHome(t, bin, filepath.Join(dir, "fleet", fmt.Sprintf("shoal%d", i)))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-e", "-c", script)
	cmd.Dir = dir
	path := filepath.Dir(bin) + string(os.PathListSeparator) + filepath.Dir(service) + string(os.PathListSeparator) + os.Getenv("PATH")
	cmd.Env = append(os.Environ(), "PATH="+path, "SHOAL_API_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "fleet", "cluster*.log"))
		var b strings.Builder
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			fmt.Fprintf(&b, "\n%s:\n%s", l, testbin.LastLines(data, 15))
		}
		t.Fatalf("the fleet walk-through failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s%s", err, script, stdout.String(), stderr.String(), b.String())
	}
	// The daemons print where they run; the file's part starts at the
	// first line that is a CID alone (shoal cid's).
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	for len(lines) > 0 && !(strings.HasPrefix(lines[0], "bafy") && !strings.Contains(lines[0], " ")) {
		lines = lines[1:]
	}
	if len(lines) < 3 {
		t.Fatalf("the walk-through printed %q", stdout.String())
	}
	want, got := strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	if !strings.HasPrefix(want, "bafy") || got != want {
		t.Fatalf("shoal cid printed %q, ipfs-cluster-ctl add %q; want the same CID", want, got)
	}
	status := strings.Join(lines[2:], "\n")
	if !strings.HasPrefix(status, want) || strings.Count(status, ": PINNED") != 2 || strings.Count(status, ": REMOTE") != 1 {
		t.Fatalf("ctl status printed:\n%s\nwant %s PINNED on two nodes and REMOTE on one", status, want)
	}
}

// stopPIDFile ends the process a pid file names (a cluster peer the
// walk-through left in the background) with SIGTERM, then SIGKILL.
func stopPIDFile(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Errorf("%s holds %q, not a pid", path, b)
		return
	}
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return // already gone
	}
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
