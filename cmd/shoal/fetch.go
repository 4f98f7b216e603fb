package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
)

// fetchOutput is `shoal fetch --json`.
type fetchOutput struct {
	CID           string                 `json:"cid"`
	Path          string                 `json:"path,omitempty"` // where it was written
	Size          uint64                 `json:"size"`
	DurationMS    int64                  `json:"duration_ms"`
	BytesReceived uint64                 `json:"bytes_received"`
	Peers         []api.PeerContribution `json:"peers"`
}

type fetchOptions struct {
	out     string
	force   bool
	detach  bool
	timeout time.Duration
	socket  string // the daemon's file socket; "" streams everything over the API
}

func newFetchCmd(g *globalFlags) *cobra.Command {
	o := &fetchOptions{}
	cmd := clientCommand("fetch CID[/PATH]", "fetch content from the swarm into a file or directory",
		`fetch asks the daemon to fetch CID (or CID/PATH, /ipfs/CID/PATH: the entry
PATH below the directory CID) from every peer that holds any of it, pins it,
and writes it to -o PATH — by default to the content's name: the name it was
shared under, else the last PATH segment, else the CID. It writes under a
temporary name in the target's directory and renames it at the end, so a
failed or interrupted fetch never leaves a partial file under the final
name. An existing target is refused unless --force is given. Directories
are written as directories; -o - writes a file (or a tar of a directory) to
stdout.

While no peer has the content, the daemon keeps searching the DHT and fetch
says so, until --timeout (0 waits forever). Ctrl-C cancels the daemon's
transfer (exit code 130); with --detach, fetch returns at once, printing the
transfer's ID, and the daemon fetches and pins on its own.`, cobra.ExactArgs(1),
		func(cmd *cobra.Command, c *api.Client, args []string) error {
			if g.json && o.out == "-" {
				return errors.New("--json and -o - both want stdout: write to a file with -o PATH, or drop --json")
			}
			if o.timeout < 0 {
				return fmt.Errorf("--timeout %v is negative: give a duration such as 5m, or 0 to wait forever", o.timeout)
			}
			o.socket = fileSocket(cmd)
			if o.detach {
				return fetchDetached(cmd.Context(), c, args[0], o, g.json, cmd.OutOrStdout())
			}
			progress := cmd.ErrOrStderr()
			if g.json && !isTerminal(progress) {
				progress = io.Discard // a script reads stderr for the JSON error only
			}
			res, err := fetch(cmd.Context(), c, args[0], o, cmd.OutOrStdout(), progress)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			if o.out == "-" {
				return nil
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "fetched %s to %s (%s in %s from %s)\n", res.CID, res.Path,
				humanBytes(res.Size), (time.Duration(res.DurationMS) * time.Millisecond).String(), plural(len(res.Peers), "peer"))
			return err
		})
	cmd.Flags().StringVarP(&o.out, "output", "o", "", "where to write: a path (default: the content's name), or - for stdout")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace an existing target")
	cmd.Flags().BoolVar(&o.detach, "detach", false, "start the transfer, print its ID and return; the daemon fetches and pins it")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to search for a peer that has the content (0 waits forever)")
	return cmd
}

// startFetch asks the daemon to fetch target (CID or CID/path) and pin it.
func startFetch(ctx context.Context, c *api.Client, target string, timeout time.Duration) (api.Transfer, error) {
	return c.Fetch(ctx, target, api.FetchOptions{Pin: true, Timeout: &timeout})
}

// fetchDetached starts the transfer and prints its ID.
func fetchDetached(ctx context.Context, c *api.Client, arg string, o *fetchOptions, asJSON bool, stdout io.Writer) error {
	target, err := cidPathArg(arg)
	if err != nil {
		return err
	}
	t, err := startFetch(ctx, c, target, o.timeout)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, t)
	}
	_, err = fmt.Fprintf(stdout, "transfer %s is fetching %s in the daemon (see GET /api/v1/transfers/%s)\n", t.ID, t.CID, t.ID)
	return err
}

func fetch(ctx context.Context, c *api.Client, arg string, o *fetchOptions, stdout, stderr io.Writer) (fetchOutput, error) {
	start := time.Now()
	res := fetchOutput{CID: arg, Peers: []api.PeerContribution{}}
	target, err := cidPathArg(arg)
	if err != nil {
		return res, err
	}
	if o.out != "" && o.out != "-" && !o.force {
		if _, err := os.Lstat(o.out); err == nil {
			return res, fmt.Errorf("%s already exists: choose another -o PATH, or pass --force to replace it", o.out)
		}
	}
	if o.out != "" && o.out != "-" && o.socket != "" {
		n, final, id, err := fetchFileFirst(ctx, c, o, target, o.out, stderr)
		if !errors.Is(err, errStreamInstead) {
			if final.CID != "" {
				res.CID = final.CID
			}
			if err != nil {
				return res, interrupted(ctx, c, err, id)
			}
			res.Path = o.out
			res.finish(start, n, final)
			return res, nil
		}
	}
	t, err := startFetch(ctx, c, target, o.timeout)
	if err != nil {
		return res, interrupted(ctx, c, err, "")
	}
	res.CID = t.CID
	if err := waitSearch(ctx, c, t, stderr); err != nil {
		return res, interrupted(ctx, c, err, t.ID)
	}
	st, err := c.StatPath(ctx, res.CID)
	if err != nil {
		return res, interrupted(ctx, c, transferFailure(ctx, c, t.ID, err), t.ID)
	}
	res.Path = o.out
	if res.Path == "" {
		res.Path = contentName(st.Name, target, res.CID)
		if _, err := os.Lstat(res.Path); err == nil && !o.force {
			cancelUnfinished(c, t.ID)
			return res, fmt.Errorf("%s already exists: choose another name with -o PATH, or pass --force to replace it", res.Path)
		}
	}
	bar := newBar(stderr, int64(st.Size), "fetching")
	if st.Type == api.TypeDirectory && bar != nil {
		bar.ChangeMax64(-1) // entry sizes of subdirectories count DAG bytes: no honest total
	}
	n, final, err := writeTarget(ctx, c, o, res.CID, t.ID, st.Type, res.Path, stdout, bar)
	if err != nil {
		barClear(bar)
		return res, interrupted(ctx, c, err, t.ID)
	}
	barFinish(bar)
	res.finish(start, n, final)
	return res, nil
}

// finish records a fetch that wrote n bytes and ended in state final.
func (res *fetchOutput) finish(start time.Time, n uint64, final api.Transfer) {
	res.Size = n
	res.DurationMS = time.Since(start).Milliseconds()
	res.BytesReceived = final.BytesReceived
	res.Peers = nonNilSlice(final.Peers)
}

// transferFailure is the transfer's own error when a request about its
// content failed because the transfer did (the request only saw the fetch
// end), else err.
func transferFailure(ctx context.Context, c *api.Client, id string, err error) error {
	if ctx.Err() == nil {
		if info, terr := c.Transfer(ctx, id); terr == nil && info.State == api.TransferFailed {
			return errors.New(info.Error)
		}
	}
	return err
}

// contentName is where fetch writes without -o: the name the content was
// shared under, else the last segment of CID/PATH, else the CID. A name
// that is not one plain path element (the daemon's word is not trusted
// with "../x") is passed over.
func contentName(name, target, c string) string {
	if plainName(name) {
		return name
	}
	if _, rest, ok := strings.Cut(target, "/"); ok {
		if seg := path.Base(rest); plainName(seg) {
			return seg
		}
	}
	return c
}

func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

// interrupted turns an error after Ctrl-C into exit code 130, cancelling
// the daemon's transfer id (if one was started) on the way out.
func interrupted(ctx context.Context, c *api.Client, err error, id string) error {
	if ctx.Err() == nil {
		return err
	}
	if id == "" {
		return &exitError{code: 130, err: errors.New("interrupted before the daemon started a transfer")}
	}
	if cerr := cancelTransfer(c, id); cerr != nil {
		return &exitError{code: 130, err: fmt.Errorf("interrupted; cancelling the daemon's transfer %s failed: %w", id, cerr)}
	}
	return &exitError{code: 130, err: fmt.Errorf("interrupted: the daemon's transfer %s is cancelled (--detach leaves a fetch running)", id)}
}

// cancelTransfer asks the daemon to end transfer id; the command's own
// context is already done, so this one has its own deadline.
func cancelTransfer(c *api.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.CancelTransfer(ctx, id)
	return err
}

// cancelUnfinished cancels transfer id if it is still running: the
// content will not be written anywhere.
func cancelUnfinished(c *api.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if info, err := c.Transfer(ctx, id); err == nil && info.State == api.TransferRunning {
		_ = cancelTransfer(c, id)
	}
}

// waitSearch waits while the transfer is still looking for a peer that has
// the content, saying so on w: rewritten in place on a terminal, a line
// every 10 s elsewhere. A transfer that fails meanwhile is the error.
func waitSearch(ctx context.Context, c *api.Client, t api.Transfer, w io.Writer) error {
	note := newSearchNote(w)
	defer note.clear()
	delay := 20 * time.Millisecond
	for {
		switch {
		case t.State == api.TransferFailed:
			return errors.New(t.Error) // the daemon names the CID
		case t.State != api.TransferRunning || t.Phase != api.PhaseSearching:
			return nil
		}
		note.show(t)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 250*time.Millisecond)
		var err error
		if t, err = c.Transfer(ctx, t.ID); err != nil {
			return err
		}
	}
}

// searchNote says on w that a transfer is still looking for a peer that
// has the content: rewritten in place on a terminal, a line every 10 s
// elsewhere.
type searchNote struct {
	w            io.Writer
	tty, printed bool
	lastShown    float64
}

func newSearchNote(w io.Writer) *searchNote {
	return &searchNote{w: w, tty: isTerminal(w), lastShown: -1}
}

// show notes t, a transfer in its searching phase.
func (s *searchNote) show(t api.Transfer) {
	if !s.tty && s.lastShown >= 0 && t.ElapsedSeconds-s.lastShown < 10 {
		return
	}
	line := fmt.Sprintf("searching for providers… %d found, %d s", t.Providers, int(t.ElapsedSeconds))
	if s.tty {
		fmt.Fprint(s.w, "\r\033[K"+line)
	} else {
		fmt.Fprintln(s.w, line)
	}
	s.printed, s.lastShown = true, t.ElapsedSeconds
}

// clear removes the note from a terminal once the search is over.
func (s *searchNote) clear() {
	if s.printed && s.tty {
		fmt.Fprint(s.w, "\r\033[K")
	}
	s.printed = false
}

// writeTarget writes the content to res.Path: a file through the daemon
// on this machine when it can (the daemon writes the file, see
// fetchIntoFile), else streamed over the API. It returns the bytes
// written and the transfer's final state.
func writeTarget(ctx context.Context, c *api.Client, o *fetchOptions, cidStr, id, kind, target string, stdout io.Writer, bar *progressbar.ProgressBar) (uint64, api.Transfer, error) {
	if kind == api.TypeFile && target != "-" && o.socket != "" {
		n, final, _, err := fetchIntoFile(ctx, c, o, cidStr, id, target, func(ev api.FileEvent) { showFileEvent(bar, ev) })
		if !errors.Is(err, api.ErrNoFileSocket) {
			return n, final, err
		}
	}
	stop := watchTransfer(ctx, c, id, bar)
	defer stop()
	// The transfer's final state is confirmed before the content takes
	// its name: a fetch that fails — even after the last byte, if the
	// daemon dies before reporting — leaves nothing under the target.
	var final api.Transfer
	ready := func() (err error) {
		final, err = waitTransfer(ctx, c, id)
		return err
	}
	n, err := writeContent(ctx, c, cidStr, id, kind, target, o.force, stdout, barWriter(bar), ready)
	return n, final, err
}

// writeContent streams the content to its target: stdout, a file or a
// directory tree.
func writeContent(ctx context.Context, c *api.Client, cidStr, transfer, kind, target string, force bool, stdout, progress io.Writer, ready func() error) (uint64, error) {
	tree := kind == api.TypeDirectory || kind == api.TypeSymlink
	var (
		stream *api.Content
		err    error
	)
	if tree {
		stream, err = c.GetOf(ctx, cidStr, transfer)
	} else {
		stream, err = c.CatOf(ctx, cidStr, transfer, 0)
	}
	if err != nil {
		return 0, err
	}
	body := &resumingBody{ctx: ctx, c: c, cid: cidStr, transfer: transfer, body: stream, resumable: !tree}
	defer body.Close()
	switch {
	case target == "-":
		n, err := io.Copy(io.MultiWriter(stdout, progress), body)
		if err != nil {
			return uint64(n), fmt.Errorf("fetching %s: %w", cidStr, err)
		}
		return uint64(n), ready()
	case !tree:
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
	c         *api.Client
	cid       string // what is streamed
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
	if info, terr := b.c.Transfer(b.ctx, b.transfer); terr == nil && info.State == api.TransferFailed {
		return n, fmt.Errorf("the daemon's fetch failed: %s", info.Error)
	}
	if !b.resumable || b.resumes >= maxResumes {
		return n, fmt.Errorf("the daemon's content stream broke at byte %d: %w (see the daemon's log)", b.off, err)
	}
	b.resumes++
	b.body.Close()
	stream, rerr := b.c.CatOf(b.ctx, b.cid, b.transfer, b.off)
	if rerr != nil {
		b.body = io.NopCloser(strings.NewReader(""))
		return n, fmt.Errorf("the daemon's content stream broke at byte %d (%v) and could not be resumed: %w", b.off, err, rerr)
	}
	b.body = stream
	return n, nil
}

func (b *resumingBody) Close() error { return b.body.Close() }

// writeFileAtomic writes r to a temporary file beside target and renames
// it into place once all of it has arrived.
func writeFileAtomic(r io.Reader, target string, force bool, progress io.Writer, ready ...func() error) (uint64, error) {
	tmp, err := partBeside(target, os.CreateTemp)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.MultiWriter(tmp, progress), r)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return uint64(n), fmt.Errorf("fetching into %s: %w (nothing was written under that name)", target, err)
	}
	return uint64(n), placeFile(tmp, target, force, ready)
}

// placeFile makes the whole part tmp readable by all (as a file created
// 0644 is), syncs and closes it, and gives it target's name once the
// ready checks pass. On failure tmp is removed.
func placeFile(tmp *os.File, target string, force bool, ready []func() error) error {
	err := placeFileKeep(tmp, target, force, ready)
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// placeFileKeep is placeFile leaving tmp in place when it fails.
func placeFileKeep(tmp *os.File, target string, force bool, ready []func() error) error {
	err := tmp.Chmod(0o644)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("writing %s: %w", tmp.Name(), err)
	} else {
		err = finishPart(tmp.Name(), target, force, false, ready)
	}
	return err
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
func watchTransfer(ctx context.Context, c *api.Client, id string, bar *progressbar.ProgressBar) (stop func()) {
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
			if info, err := c.Transfer(ctx, id); err == nil {
				bar.Describe("fetching from " + plural(len(info.Peers), "peer"))
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// waitTransfer polls until the transfer has finished and returns its
// final state; a failed transfer is an error in the daemon's words.
func waitTransfer(ctx context.Context, c *api.Client, id string) (api.Transfer, error) {
	delay := 20 * time.Millisecond
	for {
		info, err := c.Transfer(ctx, id)
		if err != nil {
			return info, err
		}
		switch info.State {
		case api.TransferDone:
			return info, nil
		case api.TransferFailed:
			return info, errors.New(info.Error) // the daemon names the CID
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
