package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
)

func newShareCmd(g *globalFlags) *cobra.Command {
	var name string
	var noCopy bool
	cmd := clientCommand("share PATH", "store, pin and announce a file or directory",
		`share streams a file, or a directory tree (as a tar, symlinks kept as
symlinks), to the daemon, which stores it, pins it and announces it in the
DHT. The root CID is printed alone on the last line of stdout: the same CID
that "shoal cid PATH" computes. The daemon keeps PATH's base name (or
--name) with the root: "shoal ls" shows it and "shoal fetch CID" writes to
it. "shoal share -" shares what it reads from stdin, named only by --name.

With --no-copy (a regular file, a daemon on this machine) the daemon keeps
no copy of the file's bytes: its store references the file's ranges and
serves peers from the file, hashing every block it reads. Moving,
truncating or editing the file afterwards makes the blocks under the
change missing (never wrong): "shoal repo verify" lists them.`, cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *api.Client, args []string) error {
			if !cmd.Flags().Changed("name") {
				name = shareName(args[0])
			}
			var res api.AddResult
			var err error
			if noCopy {
				res, err = shareNoCopy(cmd.Context(), c, fileSocket(cmd), args[0], name)
			} else {
				res, err = share(cmd.Context(), c, args[0], name, cmd.InOrStdin(), cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), res.CID)
			return err
		})
	cmd.Flags().StringVar(&name, "name", "", `the name kept with the root (default: PATH's base name; none for "-")`)
	cmd.Flags().BoolVar(&noCopy, "no-copy", false, "keep no copy in the store: serve peers from PATH itself (a regular file; the daemon must run on this machine)")
	return cmd
}

// shareNoCopy hands the daemon path's descriptor over its file socket,
// and the daemon shares the file without copying it.
func shareNoCopy(ctx context.Context, c *api.Client, socket, path, name string) (api.AddResult, error) {
	if socket == "" {
		return api.AddResult{}, fmt.Errorf("--no-copy needs the daemon on this machine (its file socket in the home): drop --api, or share without --no-copy")
	}
	f, err := os.Open(path)
	if err != nil {
		return api.AddResult{}, fmt.Errorf("cannot read %s: %w (check the path and its permissions)", path, unwrapPathError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return api.AddResult{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return api.AddResult{}, fmt.Errorf("--no-copy shares a regular file, and %s is a %s: share it without --no-copy", path, fi.Mode().Type())
	}
	res, err := c.AddNoCopy(ctx, socket, f, api.AddOptions{Name: name})
	if err != nil {
		return res, fmt.Errorf("sharing %s without a copy: %w", path, err)
	}
	return res, nil
}

// shareName is the name kept for path: its base name, none for stdin.
func shareName(path string) string {
	if path == "-" {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Base(path)
	}
	base := filepath.Base(abs)
	if base == string(filepath.Separator) {
		return "" // the file system's root has no name
	}
	return base
}

// share sends path to the daemon: a file as the body, a directory as a
// tar built while walking it, "-" as what stdin holds.
func share(ctx context.Context, c *api.Client, path, name string, stdin io.Reader, stderr io.Writer) (api.AddResult, error) {
	if path == "-" {
		return shareStream(ctx, c, stdin, -1, "stdin", name, stderr)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return api.AddResult{}, fmt.Errorf("cannot read %s: %w (check the path and its permissions)", path, unwrapPathError(err))
	}
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return api.AddResult{}, fmt.Errorf("cannot read %s: %w", path, unwrapPathError(err))
		}
		defer f.Close()
		return shareStream(ctx, c, f, fi.Size(), path, name, stderr)
	case fi.IsDir():
		return shareDir(ctx, c, path, name, stderr)
	}
	return api.AddResult{}, fmt.Errorf("cannot share %s: it is a %s, not a regular file or directory", path, fi.Mode().Type())
}

// shareStream sends one file's bytes from r (size bytes, -1 = unknown;
// what names it in errors) with a progress bar.
func shareStream(ctx context.Context, c *api.Client, r io.Reader, size int64, what, name string, stderr io.Writer) (api.AddResult, error) {
	bar := newBar(stderr, size, "sharing")
	body := io.TeeReader(r, barWriter(bar))
	res, err := c.Add(ctx, struct{ io.Reader }{body}, api.AddOptions{Name: name})
	if err != nil {
		barClear(bar)
		return res, fmt.Errorf("sharing %s: %w", what, err)
	}
	barFinish(bar)
	return res, nil
}

func shareDir(ctx context.Context, c *api.Client, dir, name string, stderr io.Writer) (api.AddResult, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return api.AddResult{}, err
	}
	var bar = newBar(stderr, -1, "sharing")
	if bar != nil {
		if total, err := treeBytes(abs); err == nil {
			bar.ChangeMax64(total)
		}
	}
	pr, pw := io.Pipe()
	walkErr := make(chan error, 1)
	go func() {
		err := writeTree(ctx, pw, abs, barWriter(bar))
		pw.CloseWithError(err)
		walkErr <- err
	}()
	res, err := c.Add(ctx, pr, api.AddOptions{Name: name, Tar: true})
	pr.CloseWithError(errors.New("request finished"))
	if werr := <-walkErr; werr != nil && !errors.Is(werr, io.ErrClosedPipe) && err != nil {
		err = werr // the walk's failure is the cause of the request's
	}
	if err != nil {
		barClear(bar)
		return res, fmt.Errorf("sharing %s: %w", dir, err)
	}
	barFinish(bar)
	return res, nil
}

// treeBytes sums the sizes of the regular files under dir.
func treeBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total, err
}

// writeTree writes dir as a tar whose entry names are relative to dir
// (the daemon's AddTar makes dir itself the root), in the lexical order
// WalkDir gives. Symlinks are written as symlinks; other special files are
// an error, as they are for `shoal cid`.
func writeTree(ctx context.Context, w io.Writer, dir string, progress io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil // the root itself: implied
		}
		return writeTreeEntry(tw, p, filepath.ToSlash(rel), d, progress)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func writeTreeEntry(tw *tar.Writer, p, name string, d fs.DirEntry, progress io.Writer) error {
	switch t := d.Type(); {
	case t.IsDir():
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Format: tar.FormatPAX})
	case t&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("cannot read symlink %s: %w", p, unwrapPathError(err))
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, Format: tar.FormatPAX})
	case t.IsRegular():
		return writeTreeFile(tw, p, name, progress)
	default:
		return fmt.Errorf("cannot share %s: it is a %s, not a regular file, directory or symlink (move it out of the tree)", p, t)
	}
}

func writeTreeFile(tw *tar.Writer, p, name string, progress io.Writer) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: 0o644, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.CopyN(io.MultiWriter(tw, progress), f, fi.Size())
	if err == io.EOF || (err == nil && n == fi.Size() && !atEOF(f)) {
		return fmt.Errorf("%s changed while it was being shared: share it again when it is no longer being written", p)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	return nil
}

// atEOF reports whether r has nothing more to read.
func atEOF(r io.Reader) bool {
	var b [1]byte
	n, _ := r.Read(b[:])
	return n == 0
}
