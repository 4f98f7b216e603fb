package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
)

// fetchOutput is `shoal fetch --json`.
type fetchOutput struct {
	CID           string                  `json:"cid"`
	Size          uint64                  `json:"size"`
	DurationMS    int64                   `json:"duration_ms"`
	BytesReceived uint64                  `json:"bytes_received"`
	Peers         []node.PeerContribution `json:"peers"`
}

type fetchOptions struct {
	out   string
	force bool
}

func newFetchCmd(g *globalFlags) *cobra.Command {
	o := &fetchOptions{}
	cmd := clientCommand("fetch CID", "fetch content from the swarm into a file or directory",
		`fetch asks the daemon to fetch CID from every peer that holds any of it and
writes it to -o PATH (default: ./CID). It writes under a temporary name in
the target's directory and renames it at the end, so a failed or
interrupted fetch never leaves a partial file under the final name. An
existing target is refused unless --force is given. Directories are
written as directories; -o - writes a file (or a tar of a directory) to
stdout.`, cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *client, args []string) error {
			if g.json && o.out == "-" {
				return errors.New("--json and -o - both want stdout: write to a file with -o PATH, or drop --json")
			}
			res, err := fetch(cmd.Context(), c, args[0], o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			if o.out == "-" {
				return nil
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "fetched %s to %s (%s in %s from %s)\n", res.CID, targetPath(o.out, res.CID),
				humanBytes(res.Size), (time.Duration(res.DurationMS) * time.Millisecond).String(), plural(len(res.Peers), "peer"))
			return err
		})
	cmd.Flags().StringVarP(&o.out, "output", "o", "", "where to write: a path (default ./CID), or - for stdout")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace an existing target")
	return cmd
}

func targetPath(out, c string) string {
	if out == "" {
		return c
	}
	return out
}

func fetch(ctx context.Context, c *client, cidArg string, o *fetchOptions, stdout, stderr io.Writer) (fetchOutput, error) {
	start := time.Now()
	res := fetchOutput{CID: cidArg, Peers: []node.PeerContribution{}}
	target := targetPath(o.out, cidArg)
	if target != "-" && !o.force {
		if _, err := os.Lstat(target); err == nil {
			return res, fmt.Errorf("%s already exists: choose another -o PATH, or pass --force to replace it", target)
		}
	}
	var t node.TransferInfo
	if err := c.postJSON(ctx, "fetch?cid="+url.QueryEscape(cidArg), nil, "", &t); err != nil {
		return res, err
	}
	res.CID = t.CID
	var st cidStat
	if err := c.getJSON(ctx, "stat/"+url.PathEscape(res.CID), &st); err != nil {
		return res, err
	}
	bar := newBar(stderr, int64(st.Size), "fetching")
	if st.Type == "directory" && bar != nil {
		bar.ChangeMax64(-1) // entry sizes of subdirectories count DAG bytes: no honest total
	}
	stop := watchTransfer(ctx, c, t.ID, bar)
	// The transfer's final state is confirmed before the content takes
	// its name: a fetch that fails — even after the last byte, if the
	// daemon dies before reporting — leaves nothing under the target.
	var final node.TransferInfo
	ready := func() (err error) {
		final, err = waitTransfer(ctx, c, t.ID)
		return err
	}
	n, err := writeContent(ctx, c, res.CID, t.ID, st.Type, target, o.force, stdout, barWriter(bar), ready)
	stop()
	if err != nil {
		barClear(bar)
		return res, err
	}
	barFinish(bar)
	res.Size = n
	res.DurationMS = time.Since(start).Milliseconds()
	res.BytesReceived = final.BytesReceived
	res.Peers = nonNilSlice(final.Peers)
	return res, nil
}

// writeContent streams the content to its target: stdout, a file or a
// directory tree.
func writeContent(ctx context.Context, c *client, cidStr, transfer, kind, target string, force bool, stdout, progress io.Writer, ready func() error) (uint64, error) {
	route := "cat/"
	if kind == "directory" || kind == "symlink" {
		route = "get/"
	}
	resp, err := c.request(ctx, http.MethodGet, route+url.PathEscape(cidStr), nil, "")
	if err != nil {
		return 0, err
	}
	body := &resumingBody{ctx: ctx, c: c, path: route + url.PathEscape(cidStr), transfer: transfer,
		body: resp.Body, resumable: route == "cat/"}
	defer body.Close()
	switch {
	case target == "-":
		n, err := io.Copy(io.MultiWriter(stdout, progress), body)
		if err != nil {
			return uint64(n), fmt.Errorf("fetching %s: %w", cidStr, err)
		}
		return uint64(n), ready()
	case route == "cat/":
		return writeFileAtomic(body, target, force, progress, ready)
	}
	return extractTarAtomic(body, cidStr, target, force, progress, ready)
}

// maxResumes bounds how often a broken content stream is picked up again
// without a byte arriving in between.
const maxResumes = 3

// resumingBody reads the daemon's content stream. When the stream breaks,
// the transfer says why: if it failed, that is the error; if it is still
// running (or done), a file stream is resumed with a Range request where
// it broke — the daemon's reader may have failed on its own while the
// transfer carries on.
type resumingBody struct {
	ctx       context.Context
	c         *client
	path      string
	transfer  string
	body      io.ReadCloser
	resumable bool
	off       int64
	resumes   int
}

func (b *resumingBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.off += int64(n)
	if n > 0 {
		b.resumes = 0
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	if b.ctx.Err() != nil {
		return n, b.ctx.Err()
	}
	var info node.TransferInfo
	if b.c.getJSON(b.ctx, "transfers/"+url.PathEscape(b.transfer), &info) == nil && info.State == node.TransferFailed {
		return n, fmt.Errorf("the daemon's fetch failed: %s", info.Error)
	}
	if !b.resumable || b.resumes >= maxResumes {
		return n, fmt.Errorf("the daemon's content stream broke at byte %d: %w (see the daemon's log)", b.off, err)
	}
	b.resumes++
	b.body.Close()
	resp, rerr := b.c.requestHeader(b.ctx, http.MethodGet, b.path, nil, http.Header{"Range": {fmt.Sprintf("bytes=%d-", b.off)}})
	if rerr != nil {
		return n, fmt.Errorf("the daemon's content stream broke at byte %d (%v) and could not be resumed: %w", b.off, err, rerr)
	}
	b.body = resp.Body
	if resp.StatusCode != http.StatusPartialContent {
		return n, fmt.Errorf("the daemon's content stream broke at byte %d (%v) and the daemon did not resume it (HTTP %s)", b.off, err, resp.Status)
	}
	return n, nil
}

func (b *resumingBody) Close() error { return b.body.Close() }

// writeFileAtomic writes r to a temporary file beside target and renames
// it into place once all of it has arrived.
func writeFileAtomic(r io.Reader, target string, force bool, progress io.Writer, ready ...func() error) (uint64, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return 0, fmt.Errorf("cannot write into %s: %w", dir, unwrapPathError(err))
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(io.MultiWriter(tmp, progress), r)
	if err != nil {
		return uint64(n), fmt.Errorf("fetching into %s: %w (nothing was written under that name)", target, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return uint64(n), err
	}
	if err := tmp.Sync(); err != nil {
		return uint64(n), fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return uint64(n), fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := runReady(ready, target); err != nil {
		return uint64(n), err
	}
	if err := placeTarget(tmp.Name(), target, force, false); err != nil {
		return uint64(n), err
	}
	done = true
	return uint64(n), nil
}

// placeTarget renames tmp to target; with force, an existing target of the
// same kind is replaced (a directory is moved aside first, then removed).
func placeTarget(tmp, target string, force, isDir bool) error {
	fi, err := os.Lstat(target)
	if err == nil {
		if !force {
			return fmt.Errorf("%s appeared while fetching: choose another -o PATH, or pass --force to replace it", target)
		}
		if fi.IsDir() != isDir {
			return fmt.Errorf("%s exists and is a %s: --force replaces only the same kind; remove it first", target, fi.Mode().Type())
		}
		if isDir {
			old := tmp + ".old"
			if err := os.Rename(target, old); err != nil {
				return fmt.Errorf("moving the old %s aside: %w", target, err)
			}
			if err := os.Rename(tmp, target); err != nil {
				return fmt.Errorf("renaming %s to %s: %w", tmp, target, err)
			}
			return os.RemoveAll(old)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, target, err)
	}
	return nil
}

// watchTransfer polls the transfer to show its peer count on the bar,
// until the returned stop is called.
func watchTransfer(ctx context.Context, c *client, id string, bar *progressbar.ProgressBar) (stop func()) {
	if bar == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var info node.TransferInfo
			if c.getJSON(ctx, "transfers/"+url.PathEscape(id), &info) == nil {
				bar.Describe("fetching from " + plural(len(info.Peers), "peer"))
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// waitTransfer polls until the transfer has finished and returns its
// final state; a failed transfer is an error in the daemon's words.
func waitTransfer(ctx context.Context, c *client, id string) (node.TransferInfo, error) {
	delay := 20 * time.Millisecond
	for {
		var info node.TransferInfo
		if err := c.getJSON(ctx, "transfers/"+url.PathEscape(id), &info); err != nil {
			return info, err
		}
		switch info.State {
		case node.TransferDone:
			return info, nil
		case node.TransferFailed:
			return info, fmt.Errorf("fetching %s failed: %s", info.CID, info.Error)
		}
		select {
		case <-ctx.Done():
			return info, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// plural is "1 peer", "2 peers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
