package kuborpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/testbin"
)

// kuboVersion is the Kubo the compatibility tests hold shoal's RPC to.
var kuboVersion = testbin.Kubo.Version

var (
	kuboOnce sync.Once
	kuboBin  string
	kuboErr  error
)

// kuboBinary returns the cached Kubo, building it when asked to (bounded
// by the test's deadline); the test skips, saying why, if there is none.
func kuboBinary(t *testing.T) string {
	t.Helper()
	kuboOnce.Do(func() {
		ctx := context.Background()
		if d, ok := t.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
			defer cancel()
		}
		var bins []string
		bins, kuboErr = testbin.Build(ctx, testbin.Kubo, t.Logf)
		if kuboErr == nil {
			kuboBin = bins[0]
		}
	})
	if kuboErr != nil {
		t.Skipf("no Kubo %s to compare with: %v", kuboVersion, kuboErr)
	}
	return kuboBin
}

// emptyDirV0 is the empty UnixFS directory as CIDv0, which `ipfs init`
// pins.
const emptyDirV0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"

// kubo is a running Kubo daemon in a temporary repo, every listener on
// loopback.
type kubo struct {
	bin, repo string
	apiAddr   string // HOST:PORT of its RPC
	swarm     string // one swarm multiaddr with /p2p/
}

// ipfs runs the Kubo CLI against this repo.
func (k *kubo) ipfs(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	out, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return out, fmt.Errorf("ipfs %s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
	}
	return out, err
}

// startKubo runs `ipfs init --profile test,unixfs-v1-2025` (loopback
// listeners on port 0, no bootstrap, no mDNS, no autoconf; shoal's import
// profile) and `ipfs daemon`, and waits for its api file.
func startKubo(t *testing.T) *kubo {
	t.Helper()
	k := &kubo{bin: kuboBinary(t), repo: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := k.ipfs(ctx, "init", "--empty-repo", "--profile", "test,unixfs-v1-2025"); err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"Routing.Type", `"none"`}, {"Swarm.ResourceMgr.Enabled", "false"}} {
		if _, err := k.ipfs(ctx, "config", "--json", kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	dctx, dcancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(dctx, k.bin, "daemon")
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	logf, err := os.Create(filepath.Join(t.TempDir(), "kubo.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		dcancel()
		<-waited
		logf.Close()
	})
	for {
		b, err := os.ReadFile(filepath.Join(k.repo, "api"))
		if err == nil && len(b) > 0 {
			k.apiAddr, err = hostPortOf(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case <-waited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("kubo daemon exited before answering:\n%s", log)
		case <-ctx.Done():
			t.Fatal("kubo daemon wrote no api file within 2 minutes")
		case <-time.After(100 * time.Millisecond):
		}
	}
	var id struct{ Addresses []string }
	if err := postJSON(ctx, "http://"+k.apiAddr+"/api/v0/id", &id); err != nil || len(id.Addresses) == 0 {
		t.Fatalf("kubo's id: %v (addresses %v)", err, id.Addresses)
	}
	k.swarm = id.Addresses[0]
	// Kubo pins an empty directory at init, even with --empty-repo; shoal
	// holds nothing it was not given. Unpin it so both pin sets are the
	// test's own.
	var rm struct{ Pins []string }
	if err := postJSON(ctx, "http://"+k.apiAddr+"/api/v0/pin/rm?arg="+emptyDirV0, &rm); err != nil {
		t.Fatalf("unpinning Kubo's empty directory: %v", err)
	}
	return k
}

// hostPortOf turns /ip4/H/tcp/P into H:P.
func hostPortOf(ma string) (string, error) {
	f := strings.Split(ma, "/")
	if len(f) < 5 || f[1] != "ip4" || f[3] != "tcp" {
		return "", fmt.Errorf("kubo's api file names %q, not /ip4/HOST/tcp/PORT", ma)
	}
	return f[2] + ":" + f[4], nil
}
