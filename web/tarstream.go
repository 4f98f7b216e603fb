package web

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
)

// maxTarDepth bounds directory nesting in a tar stream; a DAG from the
// swarm may be arbitrarily deep.
const maxTarDepth = 1024

// tarStreamer writes a UnixFS DAG as a tar stream, reading each file as
// it arrives from the swarm.
type tarStreamer struct {
	n  Node
	tw *tar.Writer
}

func newTarStreamer(n Node, w io.Writer) *tarStreamer {
	return &tarStreamer{n: n, tw: tar.NewWriter(w)}
}

// write emits c (of the given kind) under name, then closes the tar.
func (t *tarStreamer) write(ctx context.Context, c cid.Cid, kind content.FSType, name string) error {
	if err := t.entry(ctx, c, kind, name, 0); err != nil {
		return err
	}
	return t.tw.Close()
}

func (t *tarStreamer) entry(ctx context.Context, c cid.Cid, kind content.FSType, name string, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch kind {
	case content.TDirectory, content.THAMTShard:
		if depth > maxTarDepth {
			return fmt.Errorf("%w: %s is nested more than %d directories deep", ErrBadRequest, name, maxTarDepth)
		}
		entries, err := t.n.List(ctx, c)
		if err != nil {
			return fmt.Errorf("listing %s: %w", name, err)
		}
		if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Format: tar.FormatPAX}); err != nil {
			return err
		}
		for _, e := range entries {
			if err := t.entry(ctx, e.CID, e.Type, path.Join(name, e.Name), depth+1); err != nil {
				return err
			}
		}
		return nil
	case content.TSymlink:
		target, err := symlinkTarget(ctx, t.n, c)
		if err != nil {
			return fmt.Errorf("reading symlink %s: %w", name, err)
		}
		return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, Format: tar.FormatPAX})
	default:
		f, err := t.n.Open(ctx, c)
		if err != nil {
			return fmt.Errorf("opening %s: %w", name, err)
		}
		defer f.Close()
		if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(f.Size()), Mode: 0o644, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := io.Copy(t.tw, f); err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		return nil
	}
}

// symlinkTarget reads a UnixFS symlink's target, decoded by content.
func symlinkTarget(ctx context.Context, n Node, c cid.Cid) (string, error) {
	return content.SymlinkTarget(ctx, nodeBlocks{n}, c)
}

// nodeBlocks is the node as content's BlockGetter: blocks from the store
// or the swarm.
type nodeBlocks struct{ n Node }

func (b nodeBlocks) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return b.n.Block(ctx, c) }

// serveFile answers a GET or HEAD of a file, with Range support, from f.
// serveFile is http.ServeContent (name picks the type by extension) that
// logs, as what, a read failure after the headers went out.
func serveFile(w http.ResponseWriter, r *http.Request, name string, f io.ReadSeeker, log *slog.Logger, what string) {
	rec := &readErrRecorder{ReadSeeker: f}
	http.ServeContent(w, r, name, zeroTime, rec)
	if rec.err != nil {
		// The status and length are sent: ServeContent stops writing, and
		// the client sees a body shorter than promised. Say why here.
		log.Warn("file stream failed", "cid", what, "err", rec.err)
	}
}

// readErrRecorder keeps the first read error other than io.EOF, which
// http.ServeContent swallows.
type readErrRecorder struct {
	io.ReadSeeker
	err error
}

func (r *readErrRecorder) Read(p []byte) (int, error) {
	n, err := r.ReadSeeker.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
