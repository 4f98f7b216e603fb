package web

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"path"
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
	// ServeContent picks the type by name's extension, then by sniffing.
	if name == "/" || name == "." {
		name = ""
	}
	serveFile(w, r, name, f, g.log, c.String())
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
