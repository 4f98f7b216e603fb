package dockercli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// ImageRepository is the repository of the images CachedImage builds;
// each is tagged with the hash of its build context.
const ImageRepository = "shoal-test"

// imageLabel marks the images CachedImage builds, so that pruning old
// ones never touches an image somebody else built.
const imageLabel = "org.shoalnet.shoal.cached-image=1"

// pruneAfter is the age past which CachedImage removes the images it
// built earlier (unless a container still uses them).
const pruneAfter = "168h"

// lockName is the file in os.TempDir() that serialises image builds
// across processes.
const lockName = "shoal-image-build.lock"

// CachedImage returns a shoal image built from the repository at root as
// it is now: a freshly compiled static binary and the Dockerfile, tagged
// ImageRepository:<hash of the build context>. When an image with that tag
// exists already — built by an earlier run, or by another test binary of
// this run — it is reused rather than built again, so built reports
// whether this call ran `docker build`.
//
// go test runs package test binaries in parallel, and several of them need
// the image: an exclusive lock on a file in os.TempDir() (flock) makes the
// first caller compile and build while the others wait, then find its
// image; compiling the binary again costs them only a link, from the Go
// build cache. ctx bounds the wait, the compile and the build.
//
// After a build, images CachedImage built more than a week ago and no
// container uses are removed, so a developer's disk does not fill with
// one image per commit. logf (may be nil) hears what was done.
func CachedImage(ctx context.Context, root string, logf func(format string, args ...any)) (name string, built bool, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	unlock, err := lockFile(ctx, filepath.Join(os.TempDir(), lockName))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if waited := time.Since(start); waited > time.Second {
		logf("waited %v for another build of the shoal image to finish", waited.Round(time.Second))
	}
	dir, err := os.MkdirTemp("", "shoal-image-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(dir)
	if err := writeBuildContext(ctx, root, dir); err != nil {
		return "", false, err
	}
	tag, err := contextTag(dir)
	if err != nil {
		return "", false, err
	}
	name = ImageRepository + ":" + tag
	if _, err := Run(ctx, nil, "image", "inspect", "--format", "{{.Id}}", name); err == nil {
		logf("reusing image %s (its build context is unchanged)", name)
		return name, false, nil
	}
	built0 := time.Now()
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "--label", imageLabel, "-t", name, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("docker build of %s: %w: %s", root, err, out)
	}
	logf("built image %s in %v (compiling the binary included: %v)", name, time.Since(built0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if out, err := Run(ctx, nil, "image", "prune", "-a", "-f", "--filter", "label="+imageLabel, "--filter", "until="+pruneAfter); err != nil {
		logf("pruning old %s images: %v", ImageRepository, err)
	} else if out != "" && out != "Total reclaimed space: 0B" {
		logf("pruned %s images older than %s: %s", ImageRepository, pruneAfter, out)
	}
	return name, true, nil
}

// writeBuildContext lays out dir as `make image` lays out the repository
// for `docker build`: the static binary at bin/linux/shoal, the
// Dockerfile, .dockerignore and deploy/image.
func writeBuildContext(ctx context.Context, root, dir string) error {
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "bin", "linux", "shoal"), "./cmd/shoal")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/shoal in %s: %w: %s", root, err, out)
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	return os.CopyFS(filepath.Join(dir, "deploy", "image"), os.DirFS(filepath.Join(root, "deploy", "image")))
}

// contextTag is the first 16 hex digits of a sha256 over every file of the
// build context dir: its path, permission bits, size and bytes. The binary
// is built with -trimpath, so the same sources give the same tag in any
// checkout.
func contextTag(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("build context %s: %s is not a regular file", dir, path)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", filepath.ToSlash(rel), info.Mode().Perm(), info.Size())
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
