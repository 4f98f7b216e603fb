package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/web"
)

// SocketFile is the daemon's file socket in its home (web.ListenFileSocket):
// through it a CLI on this machine hands the daemon a file to fetch into.
const SocketFile = "api.sock"

// fileSocket is the file socket of the daemon a client command talks to:
// the one in its home, "" when --api names a daemon (perhaps on another
// machine) or there is no home.
func fileSocket(cmd *cobra.Command) string {
	if a, _ := cmd.Flags().GetString("api"); a != "" {
		return ""
	}
	home, err := homeDir(cmd)
	if err != nil {
		return ""
	}
	return filepath.Join(home, SocketFile)
}

// fetchIntoFile has the daemon write the file: this process creates the
// temporary file beside target (O_EXCL, so it is new and this user's),
// hands its descriptor to the daemon over the file socket, and the daemon
// writes each block at its offset as it is verified, syncs the file and
// reports done; then this process renames it into place. The daemon
// syncs because it did the writing and "done" then means durable; the
// rename stays here because it needs the directory, which the daemon
// (another user, another mount namespace) may not even see. An error
// wrapping api.ErrNoFileSocket means nothing was written: stream instead.
//
// id is the transfer already fetching cidStr, or "" when the file socket
// starts it (fetchFileFirst): its ID, returned, is then the one the
// daemon's events name. show hears every event.
func fetchIntoFile(ctx context.Context, c *api.Client, o *fetchOptions, cidStr, id, target string, show func(api.FileEvent)) (uint64, api.Transfer, string, error) {
	if _, err := os.Stat(o.socket); err != nil {
		return 0, api.Transfer{}, id, fmt.Errorf("%w: %v", api.ErrNoFileSocket, err)
	}
	tmp, err := partBeside(target, os.CreateTemp)
	if err != nil {
		return 0, api.Transfer{}, id, err
	}
	// Held while this process runs: a part file nobody holds is left by
	// an interrupted fetch (removeStaleParts).
	lockPart(tmp)
	placed, keep := false, false
	defer func() {
		if !placed {
			tmp.Close()
			if !keep {
				os.Remove(tmp.Name())
			}
		}
	}()
	timeout := o.timeout
	abs, _ := filepath.Abs(target)
	var final api.Transfer
	ev, err := c.FetchFile(ctx, o.socket, cidStr, tmp, api.FetchOptions{Pin: true, Timeout: &timeout, Path: abs}, func(ev api.FileEvent) {
		if ev.Transfer != nil {
			final = *ev.Transfer
			if id == "" {
				id = ev.Transfer.ID
			}
		}
		show(ev)
	})
	if err != nil {
		if errors.Is(err, api.ErrNoFileSocket) {
			return 0, final, id, err
		}
		var ae *api.Error
		if errors.As(err, &ae) && ev.Written == 0 {
			return 0, final, id, fmt.Errorf("fetching into %s: %w (nothing was written under that name)", target, err)
		}
		// The daemon's store may reference what it wrote into the part
		// (it is the seed): keep it, so fetching again moves only what
		// is missing; that fetch removes it.
		keep = true
		return ev.Written, final, id, fmt.Errorf("fetching into %s: %w (nothing was written under that name; %s is kept so that fetching again resumes from it)", target, err, tmp.Name())
	}
	fi, err := tmp.Stat()
	if err != nil {
		return ev.Written, final, id, fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if uint64(fi.Size()) != ev.Size || ev.Written != ev.Size {
		return ev.Written, final, id, fmt.Errorf("the daemon reported %s whole, but %s holds %d of its %d bytes (nothing was written under %s): fetch it again", cidStr, tmp.Name(), fi.Size(), ev.Size, target)
	}
	// The socket's fetch joins transfer id, or, if id ended before it
	// began, finds everything stored: id's final state is the fetch's.
	ready := func() (err error) {
		if id == "" {
			return fmt.Errorf("the daemon wrote %s but named no transfer for it: fetch it again", cidStr)
		}
		if final.ID == id && final.State == api.TransferDone {
			return nil // the last event carried it: WriteFile waits for the transfer's end
		}
		final, err = waitTransfer(ctx, c, id)
		return err
	}
	placed = true
	if err := placeFileKeep(tmp, target, o.force, []func() error{ready}); err != nil {
		// The part holds the whole file and the daemon's store may
		// reference it: fetching again takes it from there.
		return ev.Size, final, id, fmt.Errorf("%w (%s holds the whole file and is kept: fetching again takes it from there)", err, tmp.Name())
	}
	if final.CID != "" {
		cidStr = final.CID // the root a CID/path named
	}
	tellPlaced(ctx, c, o.socket, cidStr, target)
	removeStaleParts(target)
	return ev.Size, final, id, nil
}

// errStreamInstead: fetchFileFirst wrote nothing because the daemon
// cannot write this content into one file (no file socket, or the
// content is a directory or symlink); the caller streams it over the API.
var errStreamInstead = errors.New("stream the content over the API")

// fetchFileFirst is `fetch -o target` through the file socket with the
// file handed over before anything is fetched: the daemon's fetchfile
// starts the transfer (or joins one already running) only once it holds
// the file, so every leaf that arrives lands in the file, the store keeps
// a reference to it, and none is written to the store first and copied
// into the file later (which wrote those leaves twice: bench/e2e.md,
// "Daemon path profile"). The search and the transfer's ID come from the
// daemon's events. It returns the bytes written, the transfer's final
// state and its ID (for cancelling on Ctrl-C); errStreamInstead when the
// caller must take the streamed path (the transfer fetchfile started,
// for a directory, keeps running and the streamed fetch joins it).
func fetchFileFirst(ctx context.Context, c *api.Client, o *fetchOptions, target, out string, stderr io.Writer) (uint64, api.Transfer, string, error) {
	note := newSearchNote(stderr)
	var bar *progressbar.ProgressBar
	var total int64
	show := func(ev api.FileEvent) {
		if ev.Transfer != nil && ev.Transfer.State == api.TransferRunning && ev.Transfer.Phase == api.PhaseSearching {
			note.show(*ev.Transfer)
			return
		}
		note.clear()
		if bar == nil {
			total = int64(ev.Size)
			if total == 0 {
				total = -1
			}
			bar = newBar(stderr, total, "fetching")
		} else if int64(ev.Size) != total && ev.Size > 0 {
			total = int64(ev.Size)
			bar.ChangeMax64(total)
		}
		showFileEvent(bar, ev)
	}
	n, final, id, err := fetchIntoFile(ctx, c, o, target, "", out, show)
	note.clear()
	switch {
	case err == nil:
		barFinish(bar)
		return n, final, id, nil
	case errors.Is(err, api.ErrNoFileSocket):
		return 0, final, id, errStreamInstead
	}
	barClear(bar)
	if n == 0 && ctx.Err() == nil && errors.Is(err, api.ErrBadRequest) {
		// The daemon refused to write the content into a file: if it is
		// not a file, it is streamed (a directory as a tree).
		if st, serr := c.StatPath(ctx, target); serr == nil && st.Type != api.TypeFile {
			return 0, final, id, errStreamInstead
		}
	}
	return n, final, id, err
}

// tellPlaced hands the placed file back to the daemon, so the references
// its store keeps to the file's leaves follow the rename and the file is
// the seed. Failing that, the daemon fetches those blocks again when it
// needs them: the fetch itself succeeded, so this only warns.
func tellPlaced(ctx context.Context, c *api.Client, socket, cidStr, target string) {
	f, err := os.Open(target)
	if err == nil {
		_, err = c.FilePlaced(ctx, socket, cidStr, f)
		f.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "shoal: warning: the daemon cannot serve %s from %s (%v): it keeps no copy, so peers are served the blocks only after it fetches them again\n", cidStr, target, err)
	}
}

// removeStaleParts removes the part files of earlier, interrupted
// fetches into target that no running fetch holds: the one that just
// succeeded copied what they held.
func removeStaleParts(target string) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".*.part"))
	for _, p := range parts {
		if partAbandoned(p) {
			os.Remove(p)
		}
	}
}

// globEscape quotes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[\`, s[i]) >= 0 {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// showFileEvent moves the bar to what the daemon has written.
func showFileEvent(bar *progressbar.ProgressBar, ev api.FileEvent) {
	if bar == nil {
		return
	}
	_ = bar.Set64(int64(ev.Written))
	if ev.Transfer != nil {
		bar.Describe("fetching from " + plural(len(ev.Transfer.Peers), "peer"))
	}
}

// fileSocketServer serves the file socket in cfg's home beside the API
// (acfg: the API's guard applies), or, when the socket cannot be made (a
// home path too long for a socket, no descriptor passing here), says so
// and returns nil: `fetch -o` then streams over the API.
func fileSocketServer(n *node.Node, acfg web.APIConfig, cfg node.Config, log *slog.Logger) (*http.Server, net.Listener) {
	path := filepath.Join(cfg.Home, SocketFile)
	h, err := web.NewFileAPI(acfg, n)
	if err != nil {
		log.Warn("no file socket: fetch -o streams over the API", "err", err)
		return nil, nil
	}
	ln, err := web.ListenFileSocket(path)
	if err != nil {
		log.Warn("no file socket: fetch -o streams over the API", "err", err)
		return nil, nil
	}
	scfg := web.DefaultServerConfig(cfg.API.MaxConns)
	scfg.Logger = log.With("part", "file socket")
	srv, l, err := web.NewFileServer(ln, h, scfg)
	if err != nil {
		ln.Close()
		log.Warn("no file socket: fetch -o streams over the API", "err", err)
		return nil, nil
	}
	return srv, l
}
