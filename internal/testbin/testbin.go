// Package testbin builds other projects' commands from the Go module
// proxy for shoal's tests (Kubo to compare the RPC with, IPFS Cluster to
// drive a fleet) and caches them between runs in
// os.UserCacheDir()/shoal-test/NAME/. Such builds are large, so a Spec
// may make building opt-in: without a cached binary and without its
// environment variable set to 1, Build says how to build it and the test
// skips.
//
// testbin imports no shoal package; only tests import it.
package testbin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Spec names the commands to build.
type Spec struct {
	// Name is the cache directory under shoal-test/, such as
	// "kubo-v0.43.0".
	Name string
	// Module and Version are what the module proxy serves, such as
	// "github.com/ipfs/kubo" and "v0.43.0".
	Module, Version string
	// Commands are package paths inside Module ("cmd/ipfs"); each is
	// built into a binary named after its last element.
	Commands []string
	// OptIn, when set, is the environment variable that must be "1" for
	// Build to build what is not cached; Cost says how long a build took
	// here, for the message that tells how to build it.
	OptIn, Cost string
	// Rerun is the command that builds the binaries when OptIn is set,
	// for that message.
	Rerun string
}

// ErrNotBuilt is returned (wrapped, with how to build them) when the
// binaries are not cached and building is opt-in and not asked for.
var ErrNotBuilt = errors.New("testbin: not built")

// ErrStillBuilding is returned (wrapped) when Build waited for another
// process's build of the binaries and ctx ended first.
var ErrStillBuilding = errors.New("testbin: a build in progress did not finish in time")

// Dir is where s's binaries are cached.
func (s Spec) Dir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory: %w", err)
	}
	return filepath.Join(cache, "shoal-test", s.Name), nil
}

// Build returns the path of each of s.Commands' binaries, in order,
// building the missing ones (under nice -n 19, bounded by ctx) and
// logging how long that took through logf.
func Build(ctx context.Context, s Spec, logf func(format string, args ...any)) ([]string, error) {
	dir, err := s.Dir()
	if err != nil {
		return nil, err
	}
	bins, missing := s.look(dir)
	if len(missing) == 0 {
		return bins, nil
	}
	if s.OptIn != "" && os.Getenv(s.OptIn) != "1" {
		// A build another process runs into the same cache (CI starts
		// one in the background before the suite) is waited for.
		if !building(dir) {
			return nil, fmt.Errorf("%w: no %s in %s (building %s %s took %s on 2 cores): build it once with %s", ErrNotBuilt, strings.Join(missing, ", "), dir, s.Module, s.Version, s.Cost, s.Rerun)
		}
		logf("waiting for the build of %s %s in progress into %s", s.Module, s.Version, dir)
		unlock, err := lockBuild(ctx, dir)
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s %s into %s, still building when the wait ended (%v)", ErrStillBuilding, s.Module, s.Version, dir, err)
		}
		if err != nil {
			return nil, fmt.Errorf("waiting for the build of %s %s in progress into %s: %w", s.Module, s.Version, dir, err)
		}
		unlock()
		if bins, missing = s.look(dir); len(missing) > 0 {
			return nil, fmt.Errorf("the build of %s %s that was in progress left no %s in %s (its log says why; build it with %s)", s.Module, s.Version, strings.Join(missing, ", "), dir, s.Rerun)
		}
		return bins, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("no go command on PATH to build %s with", s.Module)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockBuild(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("waiting for another build of %s %s into %s: %w", s.Module, s.Version, dir, err)
	}
	defer unlock()
	if bins, missing = s.look(dir); len(missing) == 0 {
		return bins, nil // built by the one we waited for
	}
	mod, err := os.MkdirTemp("", "testbin-"+s.Name)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(mod)
	tmp := filepath.Join(mod, "bin") + string(filepath.Separator)
	start := time.Now()
	steps := [][]string{{goBin, "mod", "init", "testbin"}}
	build := []string{goBin, "build", "-o", tmp}
	for _, c := range s.Commands {
		steps = append(steps, []string{goBin, "get", s.Module + "/" + c + "@" + s.Version})
		build = append(build, s.Module+"/"+c)
	}
	for _, step := range append(steps, build) {
		if err := run(ctx, mod, step); err != nil {
			return nil, fmt.Errorf("building %s %s (run once with a longer -timeout to cache it in %s): %w", s.Module, s.Version, dir, err)
		}
	}
	for i, c := range s.Commands {
		if err := os.Rename(filepath.Join(tmp, path.Base(c)), bins[i]); err != nil {
			return nil, err
		}
	}
	logf("built %s %s (%s) in %s into %s", s.Module, s.Version, strings.Join(s.Commands, ", "), time.Since(start).Round(time.Second), dir)
	return bins, nil
}

// look returns the paths of s's binaries in dir and the names of those
// that are not there.
func (s Spec) look(dir string) (bins, missing []string) {
	bins = make([]string, len(s.Commands))
	for i, c := range s.Commands {
		bins[i] = filepath.Join(dir, path.Base(c))
		if _, err := os.Stat(bins[i]); err != nil {
			missing = append(missing, path.Base(c))
		}
	}
	return bins, missing
}

func run(ctx context.Context, dir string, args []string) error {
	if nice, err := exec.LookPath("nice"); err == nil {
		args = append([]string{nice, "-n", "19"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("not finished before the deadline: %w", ctx.Err())
		}
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, LastLines(out, 20))
	}
	return nil
}

// LastLines is the last n lines of b, for error messages.
func LastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
