package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// extractTarAtomic writes a tar whose entries sit under top/ (as the API's
// get route sends them) into a temporary directory beside target, then
// renames it into place. Nothing is ever written outside that directory:
// entries are created through an os.Root, and names with "..", absolute
// names and symlinks pointing outside the tree are refused.
//
// Each ready check runs after the tree is complete and before the rename;
// if one fails, nothing is placed under target.
func extractTarAtomic(r io.Reader, top, target string, force bool, progress io.Writer, ready ...func() error) (uint64, error) {
	tmp, err := partBeside(target, os.MkdirTemp)
	if err != nil {
		return 0, err
	}
	n, err := extractTar(r, top, tmp, progress)
	if err != nil {
		err = fmt.Errorf("fetching into %s: %w (nothing was written under that name)", target, err)
	} else if err = os.Chmod(tmp, 0o755); err == nil {
		err = finishPart(tmp, target, force, true, ready)
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return n, err
}

// partBeside makes, with mk (os.CreateTemp or os.MkdirTemp), the
// temporary file or directory in target's directory that a fetch writes
// until its content takes target's name.
func partBeside[T any](target string, mk func(dir, pattern string) (T, error)) (T, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	part, err := mk(dir, "."+base+".*.part")
	if err != nil {
		return part, fmt.Errorf("cannot write into %s: %w", dir, unwrapPathError(err))
	}
	return part, nil
}

// finishPart runs the ready checks and then gives the finished part its
// final name; the caller removes the part if this fails.
func finishPart(part, target string, force, isDir bool, ready []func() error) error {
	if err := runReady(ready, target); err != nil {
		return err
	}
	return placeTarget(part, target, force, isDir)
}

// errUnsafeEntry marks a tar entry that would escape the target.
var errUnsafeEntry = errors.New("unsafe entry")

func extractTar(r io.Reader, top, dir string, progress io.Writer) (uint64, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	var total uint64
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("reading the daemon's tar stream: %w", err)
		}
		rel, err := entryPath(h.Name, top)
		if err != nil {
			return total, err
		}
		n, err := extractEntry(root, tr, h, rel, progress)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// entryPath maps a tar name "top/a/b" to "a/b" ("." for top itself),
// refusing anything not strictly below top.
func entryPath(name, top string) (string, error) {
	name = strings.TrimSuffix(name, "/")
	if name == top {
		return ".", nil
	}
	rel, ok := strings.CutPrefix(name, top+"/")
	if !ok || !filepath.IsLocal(rel) || path.Clean(rel) != rel || strings.Contains(rel, `\`) {
		return "", fmt.Errorf("%w %q: it would land outside the target", errUnsafeEntry, name)
	}
	return rel, nil
}

func extractEntry(root *os.Root, tr io.Reader, h *tar.Header, rel string, progress io.Writer) (uint64, error) {
	switch h.Typeflag {
	case tar.TypeDir:
		if rel == "." {
			return 0, nil
		}
		return 0, root.MkdirAll(rel, 0o755)
	case tar.TypeReg:
		if rel == "." {
			return 0, fmt.Errorf("%w %q: a file where the top directory belongs", errUnsafeEntry, h.Name)
		}
		f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return 0, fmt.Errorf("creating %s: %w", rel, err)
		}
		n, err := io.Copy(io.MultiWriter(f, progress), tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return uint64(n), fmt.Errorf("writing %s: %w", rel, err)
		}
		return uint64(n), nil
	case tar.TypeSymlink:
		if rel == "." {
			return 0, fmt.Errorf("%w %q: a symlink where the top directory belongs", errUnsafeEntry, h.Name)
		}
		t := h.Linkname
		if t == "" || path.IsAbs(t) || filepath.IsAbs(t) || !filepath.IsLocal(path.Join(path.Dir(rel), t)) {
			return 0, fmt.Errorf("%w: symlink %s points to %q, outside the fetched tree", errUnsafeEntry, rel, t)
		}
		return 0, root.Symlink(t, rel)
	}
	return 0, fmt.Errorf("%w %q: tar entry type %q is not a file, directory or symlink", errUnsafeEntry, h.Name, h.Typeflag)
}

// runReady runs the checks that must pass before a fetched file or tree
// takes its final name.
func runReady(ready []func() error, target string) error {
	for _, f := range ready {
		if err := f(); err != nil {
			return fmt.Errorf("%w (nothing was written under %s)", err, target)
		}
	}
	return nil
}
