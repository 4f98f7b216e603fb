package web

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

// GatewayConfig configures the read-only HTTP gateway.
type GatewayConfig struct {
	// Timeout bounds finding content before the response starts (resolving
	// the path and fetching the root block); past it the gateway answers
	// 504. Streaming the body is bounded only by the client.
	Timeout time.Duration
	// Logger receives failures after the response has started; nil
	// discards them.
	Logger *slog.Logger
}

// DefaultGatewayConfig returns the gateway's defaults.
func DefaultGatewayConfig() GatewayConfig {
	return GatewayConfig{Timeout: 2 * time.Minute}
}

// Validate reports the first thing wrong with the configuration.
func (c GatewayConfig) Validate() error {
	if c.Timeout <= 0 {
		return fmt.Errorf("%w: gateway timeout %v must be positive", ErrConfig, c.Timeout)
	}
	return nil
}

type gateway struct {
	cfg GatewayConfig
	n   Node
	log *slog.Logger
}

// immutable is the Cache-Control of everything named by CID.
const immutable = "public, max-age=29030400, immutable"

// NewGateway returns the handler of GET and HEAD /ipfs/{cid}[/path]:
// files streamed as they are fetched (with single Range requests),
// directories as an HTML listing (or their index.html), and the trustless
// formats ?format=raw (one block) and ?format=car (CAR v1 of the DAG).
func NewGateway(cfg GatewayConfig, n Node) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &gateway{cfg: cfg, n: n, log: cfg.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ipfs/{path...}", g.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("%s is not a gateway path: use /ipfs/<cid>[/path]", r.URL.Path), http.StatusNotFound)
	})
	return mux, nil
}

// gwError answers with a one-line text body.
func (g *gateway) gwError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Del("ETag")
	h.Del("Cache-Control")
	h.Del("Content-Disposition")
	http.Error(w, msg, status)
}

// fail classifies err; a deadline passed while finding content is 504.
func (g *gateway) fail(w http.ResponseWriter, ctx context.Context, err error) {
	status := statusFor(err)
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		// The gateway's own deadline, not a search timeout the error
		// already explains.
		status = http.StatusGatewayTimeout
		err = fmt.Errorf("%w: nothing arrived from the swarm within %v (is any provider online? see `shoal peers`)", err, g.cfg.Timeout)
	}
	if status >= 500 {
		g.log.Warn("gateway request failed", "err", err)
	}
	g.gwError(w, status, errorMessage(err))
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		g.gwError(w, http.StatusMethodNotAllowed, "the gateway is read-only: use GET or HEAD")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	root, p, err := parseCIDPath(r.PathValue("path"))
	if err != nil {
		g.fail(w, r.Context(), err)
		return
	}
	// Everything below reads under root: one read session, one lookup.
	r = r.WithContext(node.WithReadRoot(r.Context(), root))
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	defer cancel()
	c := root
	if p != "" {
		if c, err = g.n.Resolve(ctx, root, p); err != nil {
			g.fail(w, ctx, fmt.Errorf("resolving /ipfs/%s/%s: %w", root, p, err))
			return
		}
	}
	w.Header().Set("X-Ipfs-Path", "/ipfs/"+root.String()+strings.TrimSuffix("/"+p, "/"))
	switch format := responseFormat(r); format {
	case "":
	case "raw":
		g.serveRaw(w, r, ctx, c)
		return
	case "car":
		g.serveCAR(w, r, c)
		return
	default:
		g.gwError(w, http.StatusBadRequest, fmt.Sprintf("unknown format %q: use format=raw or format=car, or none", format))
		return
	}
	kind, err := g.n.Kind(ctx, c)
	if err != nil {
		g.fail(w, ctx, fmt.Errorf("reading %s: %w", c, err))
		return
	}
	switch kind {
	case content.TDirectory, content.THAMTShard:
		g.serveDir(w, r, ctx, c, root, p)
	case content.TSymlink:
		target, err := symlinkTarget(ctx, g.n, c)
		if err != nil {
			g.fail(w, ctx, fmt.Errorf("reading symlink %s: %w", c, err))
			return
		}
		w.Header().Set("ETag", `"`+c.String()+`"`)
		w.Header().Set("Cache-Control", immutable)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		serveFile(w, r, "", strings.NewReader(target), g.log, c.String())
	default:
		name := path.Base("/" + p)
		if p == "" {
			name = g.n.RootName(root)
		}
		if f := r.URL.Query().Get("filename"); f != "" {
			name = f
		}
		if name != "/" && name != "." && name != "" {
			w.Header().Set("Content-Disposition", contentDisposition("inline", name))
		}
		g.serveUnixFSFile(w, r, c, name)
	}
}

// contentDisposition is a Content-Disposition value naming name (RFC
// 6266): a quoted ASCII fallback for old clients, and, when the name is
// not plain printable ASCII, its UTF-8 bytes percent-encoded in filename*
// (RFC 5987), which current clients prefer.
func contentDisposition(disposition, name string) string {
	var fallback, ext strings.Builder
	plain := true
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || r > 0x7e:
			fallback.WriteByte('_')
			plain = false
		case r == '"' || r == '\\':
			fallback.WriteByte('_')
			plain = false
		default:
			fallback.WriteRune(r)
		}
	}
	if plain {
		return disposition + `; filename="` + name + `"`
	}
	for _, b := range []byte(name) {
		// attr-char of RFC 5987: ALPHA / DIGIT / "!#$&+-.^_`|~"
		if b < 0x80 && (b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$&+-.^_`|~", b) >= 0) {
			ext.WriteByte(b)
		} else {
			fmt.Fprintf(&ext, "%%%02X", b)
		}
	}
	return disposition + `; filename="` + fallback.String() + `"; filename*=UTF-8''` + ext.String()
}

// responseFormat is ?format=, else what Accept asks for.
func responseFormat(r *http.Request) string {
	if f := r.URL.Query().Get("format"); f != "" {
		return f
	}
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "application/vnd.ipld.raw"):
		return "raw"
	case strings.Contains(accept, "application/vnd.ipld.car"):
		return "car"
	}
	return ""
}

func (g *gateway) serveUnixFSFile(w http.ResponseWriter, r *http.Request, c cid.Cid, name string) {
	f, err := g.n.Open(r.Context(), c)
	if err != nil {
		g.fail(w, r.Context(), fmt.Errorf("opening %s: %w", c, err))
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("ETag", `"`+c.String()+`"`)
	h.Set("Cache-Control", immutable)
	if name == "/" || name == "." {
		name = ""
	}
	want := expectRange(r, f, `"`+c.String()+`"`)
	// ServeContent would sniff the type by reading the file's start with
	// Read, which fetches the whole DAG: decide it here instead.
	if err := g.contentType(w, r, c, f, name, want); err != nil {
		g.fail(w, r.Context(), fmt.Errorf("reading %s: %w", c, err))
		return
	}
	serveFile(w, r, name, f, g.log, c.String())
}

// contentType sets the Content-Type of file f: by name's extension, else
// sniffed from its first 512 bytes (as ServeContent does), else left
// unset when the answer has no body of f (304, 416). For a Range that
// does not start at 0 the sniff reads through a second reader while the
// first fetches the range's first block, so the two fetches overlap; an
// error of either comes back before any byte is written.
func (g *gateway) contentType(w http.ResponseWriter, r *http.Request, c cid.Cid, f node.File, name string, want wantedBytes) error {
	h := w.Header()
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		h.Set("Content-Type", t)
		return nil
	}
	if want.none || strings.Contains(r.Header.Get("If-None-Match"), h.Get("ETag")) {
		h["Content-Type"] = nil // no body: ServeContent must not sniff
		return nil
	}
	var buf [512]byte
	if !want.part {
		// The whole file: read its start as ServeContent would, which
		// starts fetching the DAG.
		k, err := io.ReadFull(f, buf[:])
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return err
		}
		h.Set("Content-Type", http.DetectContentType(buf[:k]))
		_, err = f.Seek(0, io.SeekStart)
		return err
	}
	warmed := make(chan error, 1)
	go func() {
		if r.Method == http.MethodHead || want.from == 0 {
			warmed <- nil
			return
		}
		var one [1]byte
		_, err := f.ReadAt(one[:], int64(want.from))
		warmed <- err
	}()
	sniff, err := g.n.Open(r.Context(), c)
	var k int
	if err == nil {
		sniff.Expect(0, uint64(len(buf)))
		k, err = sniff.ReadAt(buf[:], 0)
		sniff.Close()
	}
	werr := <-warmed
	if err != nil && err != io.EOF {
		return err
	}
	if werr != nil && werr != io.EOF {
		return werr
	}
	h.Set("Content-Type", http.DetectContentType(buf[:k]))
	return nil
}

// expectRange tells f the bytes a Range request will read of it, so it
// fetches only those (node.File.Expect), and returns them.
func expectRange(r *http.Request, f node.File, etag string) wantedBytes {
	want := requestedBytes(r, etag, f.Size())
	if want.part {
		f.Expect(want.from, want.end)
	}
	return want
}

// wantedBytes is what a request asks of a file: part is true for a Range
// ServeContent will answer with 206, holding bytes [from, end); none for
// one it will answer with 416; neither for the whole file.
type wantedBytes struct {
	part, none bool
	from, end  uint64
}

// requestedBytes reads the Range header as http.ServeContent will (RFC
// 9110 byte ranges; If-Range against etag; ranges that add up to more
// than the file served whole), for the reader's read-ahead. It decides
// nothing ServeContent does not decide again.
func requestedBytes(r *http.Request, etag string, size uint64) wantedBytes {
	header := r.Header.Get("Range")
	if header == "" {
		return wantedBytes{}
	}
	if ir := r.Header.Get("If-Range"); ir != "" && !strings.HasPrefix(textproto.TrimString(ir), etag) {
		return wantedBytes{} // not this file's strong ETag: the Range is ignored
	}
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return wantedBytes{none: true}
	}
	if size > math.MaxInt64 {
		return wantedBytes{}
	}
	n := int64(size)
	from, end, sum := n, int64(0), int64(0)
	parts, noOverlap := 0, false
	for ra := range strings.SplitSeq(spec, ",") {
		ra = textproto.TrimString(ra)
		if ra == "" {
			continue
		}
		first, last, ok := strings.Cut(ra, "-")
		if !ok {
			return wantedBytes{none: true}
		}
		first, last = textproto.TrimString(first), textproto.TrimString(last)
		var a, b int64 // [a, b)
		if first == "" {
			if last == "" || last[0] == '-' {
				return wantedBytes{none: true}
			}
			i, err := strconv.ParseInt(last, 10, 64)
			if err != nil || i < 0 {
				return wantedBytes{none: true}
			}
			a, b = n-min(i, n), n
		} else {
			i, err := strconv.ParseInt(first, 10, 64)
			if err != nil || i < 0 {
				return wantedBytes{none: true}
			}
			if i >= n {
				noOverlap = true
				continue
			}
			a, b = i, n
			if last != "" {
				j, err := strconv.ParseInt(last, 10, 64)
				if err != nil || i > j {
					return wantedBytes{none: true}
				}
				b = min(j, n-1) + 1
			}
		}
		parts++
		from, end, sum = min(from, a), max(end, b), sum+b-a
	}
	switch {
	case parts == 0 && noOverlap && n > 0:
		return wantedBytes{none: true} // an empty file is served whole

	case parts == 0, sum > n:
		return wantedBytes{} // served whole
	}
	return wantedBytes{part: true, from: uint64(from), end: uint64(end)}
}

func (g *gateway) serveRaw(w http.ResponseWriter, r *http.Request, ctx context.Context, c cid.Cid) {
	b, err := g.n.Block(ctx, c)
	if err != nil {
		g.fail(w, ctx, fmt.Errorf("block %s: %w", c, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.ipld.raw")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.bin"`, c))
	h.Set("ETag", `"`+c.String()+`.raw"`)
	h.Set("Cache-Control", immutable)
	http.ServeContent(w, r, "", zeroTime, strings.NewReader(string(b)))
}

func (g *gateway) serveCAR(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.ipld.car; version=1; order=dfs; dups=n")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.car"`, c))
	h.Set("ETag", `W/"`+c.String()+`.car"`)
	h.Set("Cache-Control", immutable)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, c.String()+".car") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// Fetch the root first so a missing or unreachable CID is an error
	// status, not an empty CAR.
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	_, err := g.n.Block(ctx, c)
	if err != nil {
		g.fail(w, ctx, fmt.Errorf("block %s: %w", c, err))
		cancel()
		return
	}
	cancel()
	if r.Method == http.MethodHead {
		return
	}
	// Prefetch the DAG in parallel; the walk below reads it in order.
	if _, err := g.n.Fetch(r.Context(), c, "gateway"); err != nil {
		g.log.Debug("gateway prefetch", "cid", c, "err", err)
	}
	if err := writeCAR(r.Context(), w, g.n, c); err != nil {
		g.log.Warn("CAR stream failed", "cid", c, "err", err)
		panic(http.ErrAbortHandler)
	}
}

var dirTemplate = template.Must(template.New("dir").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Path}}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2733}
h1{font-size:1.1rem;word-break:break-all}table{border-collapse:collapse;width:100%}
td{padding:.3rem .6rem;border-bottom:1px solid #e3e8ee}td.size{text-align:right;white-space:nowrap}
td.cid{font:12px ui-monospace,monospace;color:#6b7785;word-break:break-all}a{color:#0b63c5;text-decoration:none}
</style></head><body>
<h1>Index of {{.Path}}</h1>
<p class="cid">{{.CID}}</p>
<table>
{{if .Parent}}<tr><td><a href="{{.Parent}}">..</a></td><td></td><td></td></tr>{{end}}
{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}{{if .Dir}}/{{end}}</a></td><td class="size">{{.Size}}</td><td class="cid">{{.CID}}</td></tr>
{{end}}</table></body></html>
`))

type dirEntryView struct {
	Name, Href, Size, CID string
	Dir                   bool
}

func (g *gateway) serveDir(w http.ResponseWriter, r *http.Request, ctx context.Context, c, root cid.Cid, p string) {
	if !strings.HasSuffix(r.URL.Path, "/") {
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
		return
	}
	entries, err := g.n.List(ctx, c)
	if err != nil {
		g.fail(w, ctx, fmt.Errorf("listing %s: %w", c, err))
		return
	}
	for _, e := range entries {
		if e.Name == "index.html" && e.Type == content.TFile {
			g.serveUnixFSFile(w, r, e.CID, e.Name)
			return
		}
	}
	full := "/ipfs/" + root.String() + strings.TrimSuffix("/"+p, "/")
	view := struct {
		Path, CID, Parent string
		Entries           []dirEntryView
	}{Path: full, CID: c.String()}
	if p != "" {
		view.Parent = "../"
	}
	for _, e := range entries {
		v := dirEntryView{Name: e.Name, Href: url.PathEscape(e.Name), CID: e.CID.String(), Dir: e.Type == content.TDirectory}
		if v.Dir {
			v.Href += "/"
		} else {
			v.Size = node.FormatBytes(e.Size)
		}
		view.Entries = append(view.Entries, v)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("ETag", `"DirIndex-`+c.String()+`"`)
	h.Set("Cache-Control", immutable)
	if r.Method == http.MethodHead {
		return
	}
	if err := dirTemplate.Execute(w, view); err != nil {
		g.log.Warn("directory listing", "cid", c, "err", err)
	}
}
