package dockercli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testContext ends a minute before the test binary's deadline, so a
// build that runs out of time fails with what it was doing instead of
// the binary panicking with `go build` and `docker build` left running.
func testContext(t *testing.T) context.Context {
	ctx := t.Context()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-time.Minute))
		t.Cleanup(cancel)
	}
	return ctx
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestContextTag: the tag follows every byte, name and permission of the
// build context, and nothing else (not where the context lives).
func TestContextTag(t *testing.T) {
	base := map[string]string{"Dockerfile": "FROM scratch\n", "bin/linux/shoal": "binary", "deploy/image/rootfs/etc/passwd": "shoal:x:65532:65532::/data:/shoal\n"}
	tag := func(dir string) string {
		t.Helper()
		s, err := contextTag(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := tag(writeTree(t, base))
	if len(want) != 16 || strings.Trim(want, "0123456789abcdef") != "" {
		t.Fatalf("tag %q: want 16 hex digits", want)
	}
	if got := tag(writeTree(t, base)); got != want {
		t.Errorf("the same context in another directory: tag %s, want %s", got, want)
	}
	changed := map[string]map[string]string{
		"a byte of the binary": {"bin/linux/shoal": "binarz"},
		"the Dockerfile":       {"Dockerfile": "FROM scratch\nUSER 1\n"},
		"a new file":           {"deploy/image/rootfs/tmp/x": ""},
	}
	for what, over := range changed {
		files := map[string]string{}
		for k, v := range base {
			files[k] = v
		}
		for k, v := range over {
			files[k] = v
		}
		if got := tag(writeTree(t, files)); got == want {
			t.Errorf("%s changed but the tag did not (%s)", what, got)
		}
	}
	renamed := writeTree(t, map[string]string{"Dockerfile": base["Dockerfile"], "bin/linux/shoal2": base["bin/linux/shoal"], "deploy/image/rootfs/etc/passwd": base["deploy/image/rootfs/etc/passwd"]})
	if got := tag(renamed); got == want {
		t.Errorf("a file renamed but the tag did not change (%s)", got)
	}
	exec := writeTree(t, base)
	if err := os.Chmod(filepath.Join(exec, "Dockerfile"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := tag(exec); got == want {
		t.Errorf("a file's mode changed but the tag did not (%s)", got)
	}
}

// TestLockExcludesOtherProcesses: while one process holds the build lock,
// another cannot take it — its wait ends with an error naming the lock —
// and once it is released, the other takes it.
func TestLockExcludesOtherProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.lock")
	try := func() (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
		cmd.Env = append(os.Environ(), "SHOAL_LOCK_HELPER="+path)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	unlock, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := try()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(out, "waiting for another process") || !strings.Contains(out, path) {
		t.Errorf("with the lock held, another process: %v, output %q; want exit 3 and an error naming %s", err, out, path)
	}
	unlock()
	if out, err := try(); err != nil || !strings.Contains(out, "locked") {
		t.Errorf("after the release, another process: %v, output %q; want it to take the lock", err, out)
	}
}

// TestLockHelperProcess is the other process of TestLockExcludesOtherProcesses.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv("SHOAL_LOCK_HELPER")
	if path == "" {
		t.Skip("helper process of TestLockExcludesOtherProcesses")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	unlock, err := lockFile(ctx, path)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
	unlock()
	os.Stdout.WriteString("locked\n")
	os.Exit(0)
}

// TestCachedImage: two callers at once get the same image and at most one
// of them builds it (none, when an earlier run built it); the image runs
// shoal. Skipped when no Docker engine answers.
func TestCachedImage(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles shoal and builds its image; skipped with -short")
	}
	ctx := testContext(t)
	if err := Available(ctx); err != nil {
		t.Skipf("skipping the image build test: %v", err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		name  string
		built bool
		err   error
	}
	res := make([]result, 2)
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() {
			name, built, err := CachedImage(ctx, root, t.Logf)
			res[i] = result{name, built, err}
		})
	}
	wg.Wait()
	for _, r := range res {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	if res[0].name != res[1].name || !strings.HasPrefix(res[0].name, ImageRepository+":") {
		t.Fatalf("names %q and %q: want the same %s:<tag>", res[0].name, res[1].name, ImageRepository)
	}
	if res[0].built && res[1].built {
		t.Errorf("both callers built %s: the second should have waited and reused it", res[0].name)
	}
	out, err := Run(ctx, nil, "run", "--rm", "--network", "none", res[0].name, "init", "--json")
	if err != nil || !strings.Contains(out, `"id"`) {
		t.Errorf("shoal init --json in %s: %q, %v; want its peer id", res[0].name, out, err)
	}
}
