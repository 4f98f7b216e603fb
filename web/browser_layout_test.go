package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/shoalnet/shoal/node"
)

// shapedNode is memNode with the peers and transfers a test sets: the
// shapes a real node shows only at moments a test cannot choose (a
// finished transfer of a known duration, a failed one, peers in a chosen
// order). The first peer's byte counters grow on every read, unevenly,
// so the bandwidth chart has data to draw.
type shapedNode struct {
	*memNode
	mu        sync.Mutex
	peers     []node.PeerInfo
	transfers []node.TransferInfo
	reads     uint64
	grown     uint64
	names     map[string]string // by CID, for roots and transfers
}

func (s *shapedNode) Roots(ctx context.Context) ([]node.RootInfo, error) {
	roots, err := s.memNode.Roots(ctx)
	for i := range roots {
		roots[i].Name = s.names[roots[i].CID]
	}
	return roots, err
}

func (s *shapedNode) Peers() []node.PeerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	s.grown += (s.reads%5 + 1) * 300 << 10
	out := slices.Clone(s.peers)
	if len(out) > 0 {
		out[0].BytesIn += s.grown
		out[0].BytesOut += s.grown / 3
	}
	return out
}

func (s *shapedNode) Transfers() []node.TransferInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.transfers)
	for i := range out {
		out[i].Name = s.names[out[i].CID]
	}
	return out
}

// Stats reports Bitswap totals that are the peers' block bytes, growing
// as Peers does, for the bandwidth chart.
func (s *shapedNode) Stats() node.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var x node.ExchangeStats
	for _, p := range s.peers {
		x.BytesIn += p.BytesIn
		x.BytesOut += p.BytesOut
	}
	x.BytesIn += s.grown
	x.BytesOut += s.grown / 3
	return node.Stats{Exchange: x}
}

// swapPeers reverses the order of the peers, here and in every transfer's
// contributions, and moves the growing counters to the other peer, so
// the peers table sorts the other way round too.
func (s *shapedNode) swapPeers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Reverse(s.peers)
	for i := range s.transfers {
		slices.Reverse(s.transfers[i].Peers)
	}
}

// pageState is what readPage reads from the dashboard in one script call.
type pageState struct {
	ScrollWidth int               `json:"scrollWidth"`
	Wide        []string          `json:"wide"` // elements reaching past the viewport's right edge
	Plot        []float64         `json:"plot"` // x, y, width, height of the chart's plot area
	Paths       []string          `json:"paths"`
	Ticks       []string          `json:"ticks"` // y axis labels, bottom up
	DataMax     float64           `json:"dataMax"`
	PeerColours map[string]string `json:"peerColours"` // peers table swatches
	BarColours  map[string]string `json:"barColours"`  // transfer legend swatches
	Transfers   map[string]struct {
		Meta  string `json:"meta"`
		Head  string `json:"head"`
		Title string `json:"title"`
		Error string `json:"error"`
	} `json:"transfers"`
	Roots map[string]struct {
		Text  string `json:"text"`
		Title string `json:"title"`
	} `json:"roots"`
}

const readPageJS = `(() => {
  const all = (sel, el) => [...(el || document).querySelectorAll(sel)];
  const plot = document.querySelector('#bw-chart rect.plot');
  const colour = (el) => el ? getComputedStyle(el).backgroundColor : '';
  const titled = (el) => all('[title]', el).map((x) => x.title).join(' | ');
  return {
    scrollWidth: document.documentElement.scrollWidth,
    wide: all('body *').filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5 && !el.closest('.table-wrap'))
      .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\s+/g, '.') : '') + ' ' + Math.round(el.getBoundingClientRect().right) + 'px').slice(0, 12),
    plot: plot ? ['x', 'y', 'width', 'height'].map((a) => Number(plot.getAttribute(a))) : null,
    paths: all('#bw-chart path').map((p) => p.getAttribute('d')),
    ticks: all('#bw-chart text.y-tick').map((x) => x.textContent),
    dataMax: Math.max(0, ...bandwidth.map((p) => Math.max(p.in, p.out))),
    peerColours: Object.fromEntries(all('#peers-table tr[data-peer]').map((tr) => [tr.dataset.peer, colour(tr.querySelector('.sw'))])),
    barColours: Object.fromEntries(all('.transfer .legend > span').map((x) => [x.querySelector('.mono').title, colour(x.querySelector('.sw'))])),
    transfers: Object.fromEntries(all('.transfer').map((el) => [el.dataset.cid, {
      meta: [...el.querySelector('.t-meta').children].map((x) => x.textContent).join(' · '), head: el.querySelector('.t-head').textContent,
      title: titled(el.querySelector('.t-head')), error: (el.querySelector('.t-error') || {}).textContent || '' }])),
    roots: Object.fromEntries(all('#roots-table tr[data-cid]').map((tr) => [tr.dataset.cid, { text: tr.cells[0].textContent, title: titled(tr.cells[0]) }])),
  };
})()`

func readPage(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	var st pageState
	run(t, ctx, "read the page", chromedp.Evaluate(readPageJS, &st))
	return st
}

// checkChart: every point of the bandwidth chart lies in its plot area,
// the newest at its right edge; the y axis reaches the largest rate
// drawn and is labelled 0, s, 2s, ... in one unit, with s 1, 2 or 5 × 10^n.
func checkChart(t *testing.T, st pageState) {
	t.Helper()
	if len(st.Plot) != 4 || len(st.Paths) == 0 {
		t.Errorf("chart: plot area %v, paths %q, y ticks %q", st.Plot, st.Paths, st.Ticks)
		return
	}
	x0, y0, x1, y1 := st.Plot[0], st.Plot[1], st.Plot[0]+st.Plot[2], st.Plot[1]+st.Plot[3]
	num := regexp.MustCompile(`-?[0-9.]+`)
	for _, d := range st.Paths {
		v := num.FindAllString(d, -1)
		if len(v) < 4 || len(v)%2 != 0 {
			t.Errorf("chart path %q: not x y pairs", d)
			return
		}
		for i := 0; i < len(v); i += 2 {
			x, _ := strconv.ParseFloat(v[i], 64)
			y, _ := strconv.ParseFloat(v[i+1], 64)
			if x < x0-0.05 || x > x1+0.05 || y < y0-0.05 || y > y1+0.05 {
				t.Errorf("chart point (%v, %v) outside the plot area x %v..%v, y %v..%v; path %q", x, y, x0, x1, y0, y1, d)
				return
			}
		}
	}
	line := num.FindAllString(st.Paths[len(st.Paths)-1], -1)
	if lastX, _ := strconv.ParseFloat(line[len(line)-2], 64); lastX < x1-3 {
		t.Errorf("the newest point is at x %v, not at the right edge %v", lastX, x1)
	}
	top, step, unit, ok := parseTicks(t, st.Ticks)
	if !ok {
		return
	}
	if top*unit < st.DataMax {
		t.Errorf("y axis tops at %s but the chart holds %.0f B/s", st.Ticks[len(st.Ticks)-1], st.DataMax)
	}
	mant := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9))
	if math.Abs(mant-1) > 1e-9 && math.Abs(mant-2) > 1e-9 && math.Abs(mant-5) > 1e-9 {
		t.Errorf("y ticks %q: step %v is not 1, 2 or 5 × 10^n", st.Ticks, step)
	}
}

// parseTicks reads y labels "0", "200 KiB/s", "400 KiB/s", ...: equal
// steps in one unit. It returns the top value and the step in that unit,
// and the unit in bytes per second; ok is false after reporting ticks
// that are not so.
func parseTicks(t *testing.T, ticks []string) (top, step, unit float64, ok bool) {
	t.Helper()
	units := map[string]float64{"B/s": 1, "KiB/s": 1 << 10, "MiB/s": 1 << 20, "GiB/s": 1 << 30, "TiB/s": 1 << 40}
	if len(ticks) < 3 || ticks[0] != "0" {
		t.Errorf("y ticks %q: want 0 and at least two steps", ticks)
		return 0, 0, 0, false
	}
	var name string
	for k, s := range ticks[1:] {
		v, u, found := strings.Cut(s, " ")
		f, err := strconv.ParseFloat(v, 64)
		if !found || err != nil || units[u] == 0 || (name != "" && u != name) {
			t.Errorf("y tick %q of %q: want a number and one unit for all", s, ticks)
			return 0, 0, 0, false
		}
		name = u
		if k == 0 {
			step = f
		}
		if math.Abs(f-float64(k+1)*step) > 1e-9*f {
			t.Errorf("y ticks %q: not equal steps of %v", ticks, step)
			return 0, 0, 0, false
		}
		top = f
	}
	return top, step, units[name], true
}

// checkNarrow: nothing sticks out of a 420 px page.
func checkNarrow(t *testing.T, st pageState) {
	t.Helper()
	if st.ScrollWidth > 420 {
		t.Errorf("at 420 px the page is %d px wide; reaching past the edge: %q", st.ScrollWidth, st.Wide)
	}
}

// saveShot saves a full-page screenshot as name in the test's directory
// and, when SHOAL_SCREENSHOT_DIR is set, there too.
func saveShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var shot []byte
	run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(&shot, 100))
	dirs := []string{t.TempDir()}
	if d := os.Getenv("SHOAL_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
}

// TestBrowserDashboardShapes drives the dashboard at 420 px over a node
// with set peers and transfers. It checks the bandwidth chart stays in
// its axes with round ticks; each peer keeps its colour when the peers
// come the other way round after a reload; a finished transfer shows its
// size over its duration and its block count; names show beside
// shortened CIDs; a failed transfer and a refused fetch read as one
// sentence each; the page is no wider than 420 px. The page's own
// formatting functions are checked on a table too. It saves a screenshot
// (see saveShot).
func TestBrowserDashboardShapes(t *testing.T) {
	chromium := needChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := newMemNode()
	photos, err := m.AddFile(ctx, bytes.NewReader(randomData(300<<10, 31)))
	if err != nil {
		t.Fatal(err)
	}
	notes, err := m.AddFile(ctx, bytes.NewReader(randomData(5000, 32)))
	if err != nil {
		t.Fatal(err)
	}
	pc, nc := photos.CID.String(), notes.CID.String()
	const peerA, peerB = "12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE", "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	started := time.Now().Add(-90 * time.Second)
	sn := &shapedNode{memNode: m,
		peers: []node.PeerInfo{
			{ID: peerA, Address: "/ip4/127.0.0.1/tcp/4001", Transport: "tcp", LatencyMS: 1.5, BytesIn: 6 << 20, Score: 1},
			{ID: peerB, Address: "/ip4/127.0.0.1/udp/4002/quic-v1", Transport: "quic-v1", LatencyMS: 20, BytesIn: 4 << 20, Score: 0.8},
		},
		transfers: []node.TransferInfo{{
			// 10 MiB in 4 s: an average of 2.50 MiB/s, whatever the last
			// rate measured (rate_bps) was.
			ID: "t1", CID: pc, Source: "api", State: node.TransferDone, Size: 10 << 20, BytesDone: 10 << 20,
			BytesReceived: 10 << 20, Blocks: 10, RateBps: 7 << 20, DuplicateRatio: 1,
			Started: started, Finished: started.Add(4 * time.Second),
			Peers: []node.PeerContribution{{Peer: peerA, Bytes: 6 << 20, Blocks: 6}, {Peer: peerB, Bytes: 4 << 20, Blocks: 4}},
		}, {
			ID: "t2", CID: nc, Source: "api", State: node.TransferFailed, Size: 2 << 20, BytesDone: 1 << 20,
			Started: started, Finished: started.Add(30 * time.Second),
			Error: "fetch of " + nc + " received nothing for 30s from the 1 peer (" + peerB + ")\n\tthey accept requests but do not answer; try other peers (shoal connect)",
		}},
	}
	names := map[string]string{pc: "holiday photos (2025).tar", nc: "notes.txt"}
	sn.names = names
	srv := startSiteEvery(t, sn, "", 200*time.Millisecond)
	bctx := startBrowser(t, ctx, chromium)
	ready := chromedp.Tasks{
		chromedp.WaitVisible(`#live[data-state="live"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.transfer[data-cid="`+pc+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#peers-table tr[data-peer="`+peerB+`"]`, chromedp.ByQuery),
		// Rendered with names, and four samples on the chart.
		chromedp.Poll(`document.querySelector('.transfer[data-cid="`+pc+`"]').textContent.includes(`+"`"+`holiday photos`+"`"+`) && bandwidth.length >= 4 && document.querySelector('#bw-chart path.line-in') !== null`, nil, chromedp.WithPollingTimeout(15*time.Second)),
	}
	run(t, bctx, "load the dashboard at 420 px", chromedp.EmulateViewport(420, 900), chromedp.Navigate(srv.URL+"/"), ready)

	st := readPage(t, bctx)
	checkChart(t, st)
	checkNarrow(t, st)
	done := st.Transfers[pc]
	if !strings.Contains(done.Meta, "average 2.50 MiB/s") || !strings.Contains(done.Meta, "10 blocks") {
		t.Errorf("finished transfer of 10 MiB in 4 s with 10 blocks shows %q, want average 2.50 MiB/s and 10 blocks", done.Meta)
	}
	short := pc[:8] + "…" + pc[len(pc)-6:]
	if !strings.Contains(done.Head, names[pc]+short) || !strings.Contains(done.Title, pc) {
		t.Errorf("transfer head %q (tooltip %q): want the name, the CID shortened to %s, the full CID in the tooltip", done.Head, done.Title, short)
	}
	if r := st.Roots[nc]; r.Text != names[nc]+nc[:8]+"…"+nc[len(nc)-6:] || !strings.Contains(r.Title, nc) {
		t.Errorf("content row %+v: want the name, the shortened CID and the full CID in the tooltip", r)
	}
	wantErr := "Fetch of " + nc + " received nothing for 30s from the 1 peer (" + peerB + ") they accept requests but do not answer; try other peers (shoal connect)."
	if got := st.Transfers[nc].Error; got != wantErr {
		t.Errorf("failed transfer's error reads\n%q, want\n%q", got, wantErr)
	}
	for _, id := range []string{peerA, peerB} {
		if c := st.PeerColours[id]; c == "" || c != st.BarColours[id] {
			t.Errorf("peer %s: colour %q in the peers table, %q in the transfer's bar", id, c, st.BarColours[id])
		}
	}
	if st.PeerColours[peerA] == st.PeerColours[peerB] {
		t.Errorf("both peers are %s", st.PeerColours[peerA])
	}

	// The other order after a reload: the same colours.
	sn.swapPeers()
	run(t, bctx, "reload with the peers the other way round", chromedp.Reload(), ready)
	again := readPage(t, bctx)
	for _, id := range []string{peerA, peerB} {
		if again.PeerColours[id] != st.PeerColours[id] || again.BarColours[id] != st.PeerColours[id] {
			t.Errorf("peer %s was %s, after reordering and a reload %s (table) and %s (bar)", id, st.PeerColours[id], again.PeerColours[id], again.BarColours[id])
		}
	}

	checkErrorToast(t, bctx, srv.URL)
	checkFormatting(t, bctx)
	run(t, bctx, "clear the toasts", chromedp.Evaluate(`document.getElementById('toasts').replaceChildren()`, nil))
	saveShot(t, bctx, "dashboard-420.png")
}

// checkErrorToast: a fetch the API refuses shows the API's message as one
// sentence, not its JSON.
func checkErrorToast(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/fetch?cid=not-a-cid", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode < 400 || body.Error == "" {
		t.Fatalf("fetch of not-a-cid: %s, %+v, %v", resp.Status, body, err)
	}
	var toast string
	run(t, ctx, "fetch a bad CID",
		chromedp.Evaluate(`document.getElementById('toasts').replaceChildren()`, nil),
		chromedp.SendKeys(`#fetch-cid`, "not-a-cid"+kb.Enter, chromedp.ByID),
		chromedp.WaitVisible(`.toast.bad`, chromedp.ByQuery),
		textOf(`.toast.bad`, &toast),
	)
	msg := strings.Join(strings.Fields(body.Error), " ")
	want := "Fetch failed: " + strings.TrimSuffix(msg, ".") + "."
	if toast != want {
		t.Errorf("refused fetch shows %q, want %q", toast, want)
	}
}

// checkFormatting runs the page's own formatting functions on a table.
func checkFormatting(t *testing.T, ctx context.Context) {
	t.Helper()
	cases := []struct{ js, want string }{
		{`apiMessage('{"error":"invalid CID \\"x\\""}', '400 Bad Request')`, `invalid CID "x"`},
		{`apiMessage('{"error":{"message":"over quota","code":7}}', '500 Internal Server Error')`, `over quota`},
		{`apiMessage('{"error":{"code":7}}', '500 Internal Server Error')`, `the node answered 500 Internal Server Error`},
		{`apiMessage('<html><body>Bad gateway</body></html>', '502 Bad Gateway')`, `the node answered 502 Bad Gateway`},
		{`apiMessage('too many open files\n', '503 Service Unavailable')`, `too many open files`},
		{`sentence('fetch failed:\n  no space left on device')`, `Fetch failed: no space left on device.`},
		{`sentence('Done!')`, `Done!`},
		{`sentence('bafkreia2x4 is not held here')`, `bafkreia2x4 is not held here.`},
		{`sentence('protocol: fetch closed')`, `Protocol: fetch closed.`},
		{`sentence('')`, `Something went wrong, and the node did not say what.`},
		{`errorText(new TypeError('Failed to fetch'))`, `the node did not answer; is the daemon still running?`},
		{`errorText({toString: () => 'odd'})`, `odd`},
		{`peerColour('12D3KooWA') === peerColour('12D3KooWA') && peerColour('12D3KooWA') !== peerColour('12D3KooWB')`, `true`},
	}
	for _, axis := range []struct {
		max  float64
		want string
	}{
		{0, "0,0.5 KiB/s,1 KiB/s"},
		{700 << 10, "0,200 KiB/s,400 KiB/s,600 KiB/s,800 KiB/s"},
		{1 << 20, "0,0.5 MiB/s,1 MiB/s"},
		{1.5 * (1 << 20), "0,0.5 MiB/s,1 MiB/s,1.5 MiB/s"},
		{3e9, "0,1 GiB/s,2 GiB/s,3 GiB/s"},
		{37.2 * (1 << 20), "0,10 MiB/s,20 MiB/s,30 MiB/s,40 MiB/s"},
	} {
		cases = append(cases, struct{ js, want string }{
			fmt.Sprintf(`(() => { const a = rateAxis(%v); return [...Array(a.steps + 1).keys()].map(a.label).join(); })()`, axis.max), axis.want})
	}
	for _, c := range cases {
		var got any
		run(t, ctx, c.js, chromedp.Evaluate(c.js, &got))
		if fmt.Sprint(got) != c.want {
			t.Errorf("%s = %q, want %q", c.js, fmt.Sprint(got), c.want)
		}
	}
}
