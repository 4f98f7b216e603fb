package web

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/shoalnet/shoal/internal/clustertest"
	"github.com/shoalnet/shoal/node"
)

// findChromium returns the browser to drive: $SHOAL_CHROMIUM, or the first
// of Debian's and Google's names on PATH.
func findChromium() string {
	if p := os.Getenv("SHOAL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// startSeeder starts a node on loopback that shares every file of files,
// serving at most uploadLimit bytes/s (0: no limit). The browser test
// starts its own nodes rather than a sim cluster: it watches the page as
// the fetching node connects to the seeders, and reads live rates that the
// simulated network, in real time on a loaded machine, would distort.
func startSeeder(t *testing.T, uploadLimit int64, files ...[]byte) *node.Node {
	t.Helper()
	n := startLoopbackNode(t, func(c *node.Config) { c.Transfer.UploadLimit = uploadLimit })
	for _, f := range files {
		if _, err := n.AddFile(context.Background(), bytes.NewReader(f)); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestBrowserDashboard drives the fetching node's dashboard in headless
// Chromium: two seeders share the same files, the fetching node connects
// to both, and every action goes through the page (fetch a CID, share a
// file by upload, pin). It checks the page shows the node's peer ID, the
// peer count, the transfer with its per-peer bar and the content rows,
// and saves a screenshot in the test's directory and, when
// SHOAL_SCREENSHOT names a path, there too (SHOAL_SCREENSHOT_SCHEME=dark
// shows the dark theme).
//
// Without Chromium it skips, unless SHOAL_REQUIRE_BROWSER=1.
func TestBrowserDashboard(t *testing.T) {
	chromium := needChromium(t)
	shotPath := os.Getenv("SHOAL_SCREENSHOT")
	// For the README picture, a slower and bigger fetch so the shot
	// catches it running; the default run stays quick.
	bigSize, limit, interval := 12<<20, int64(0), 200*time.Millisecond
	if shotPath != "" {
		bigSize, limit, interval = 200<<20, 12<<20, time.Second
	}
	small, big := randomData(6<<20+4321, 21), randomData(bigSize, 22)
	shared := [][]byte{small, big}
	var medium []byte
	if shotPath != "" {
		medium = randomData(40<<20, 23)
		shared = append(shared, medium)
	}
	seedA := startSeeder(t, limit, shared...)
	seedC := startSeeder(t, limit, shared...)
	b := startLoopbackNode(t, withoutExtension)
	srv := startSiteEvery(t, b, "", interval)
	smallCID, bigCID := rootCID(t, seedA, len(small)), rootCID(t, seedA, len(big))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bctx := startBrowser(t, ctx, chromium)
	if scheme := os.Getenv("SHOAL_SCREENSHOT_SCHEME"); scheme != "" { // "dark" or "light"
		run(t, bctx, "emulate "+scheme, emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}))
	}
	bID := b.Info().ID
	var shownID string
	run(t, bctx, "load the dashboard",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`#live[data-state="live"]`, chromedp.ByQuery),
		textOf(`#node-id`, &shownID),
	)
	if shownID != bID {
		t.Fatalf("dashboard shows peer ID %q, want %q", shownID, bID)
	}
	for _, seed := range []*node.Node{seedA, seedC} {
		if err := b.Connect(ctx, seed.Info().Addresses[0]); err != nil {
			t.Fatal(err)
		}
	}
	var peerCount string
	run(t, bctx, "see both peers",
		chromedp.WaitVisible(`#peers-table tr[data-peer="`+seedA.Info().ID+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#peers-table tr[data-peer="`+seedC.Info().ID+`"]`, chromedp.ByQuery),
		textOf(`#peer-count`, &peerCount),
	)
	if peerCount != "2" {
		t.Fatalf("peer count shows %q, want 2", peerCount)
	}
	// This node runs without the swarm extension: the Swarm card says so.
	run(t, bctx, "see the swarm extension off", chromedp.WaitVisible(`#swarm-off`, chromedp.ByQuery))

	// Fetch through the page's form; the request carries the page's
	// Origin, which the API accepts as its own.
	fetchViaForm := func(c string) chromedp.Tasks {
		return chromedp.Tasks{
			// Enter submits the form (a click could land on a toast).
			chromedp.SendKeys(`#fetch-cid`, c+kb.Enter, chromedp.ByID),
		}
	}
	run(t, bctx, "fetch the small file",
		fetchViaForm(smallCID),
		chromedp.WaitVisible(`.transfer[data-cid="`+smallCID+`"][data-state="done"] .t-peers`, chromedp.ByQuery),
		chromedp.WaitVisible(`#roots-table tr[data-cid="`+smallCID+`"]`, chromedp.ByQuery),
	)

	// Share a file by upload, then pin the fetched root from its row.
	upload := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(upload, []byte(strings.Repeat("shoal dashboard upload\n", 5000)), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, bctx, "share a file and pin",
		chromedp.SetUploadFiles(`#share-file`, []string{upload}, chromedp.ByID),
		chromedp.Poll(`document.querySelectorAll('#roots-table tbody tr').length === 2`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		clickOn(`#roots-table tr[data-cid="`+smallCID+`"] button`),
		chromedp.WaitVisible(`#roots-table tr[data-cid="`+smallCID+`"] .pill.accent`, chromedp.ByQuery),
	)
	checkRoots(t, b, smallCID, 115000)

	if shotPath != "" {
		// Some history for the bandwidth chart: a pause, a medium
		// fetch, another pause.
		time.Sleep(8 * time.Second)
		mediumCID := rootCID(t, seedA, len(medium))
		run(t, bctx, "fetch the medium file", fetchViaForm(mediumCID),
			chromedp.WaitVisible(`.transfer[data-cid="`+mediumCID+`"][data-state="done"]`, chromedp.ByQuery))
		time.Sleep(6 * time.Second)
	}
	run(t, bctx, "fetch the big file", fetchViaForm(bigCID))
	if shotPath != "" {
		// Catch the big fetch about half way, with rate and ETA showing.
		waitPast(t, ctx, b, bigCID, len(big), 45)
		var shot []byte
		run(t, bctx, "screenshot",
			chromedp.WaitVisible(`.transfer[data-cid="`+bigCID+`"][data-state="running"] .t-peers`, chromedp.ByQuery),
			chromedp.Evaluate(`document.getElementById('toasts').replaceChildren()`, nil),
			chromedp.FullScreenshot(&shot, 100),
		)
		if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot saved to %s", shotPath)
	}
	run(t, bctx, "see the big fetch finish",
		chromedp.WaitVisible(`.transfer[data-cid="`+bigCID+`"][data-state="done"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#roots-table tr[data-cid="`+bigCID+`"]`, chromedp.ByQuery),
	)
	saveShot(t, bctx, "dashboard.png")
	st := readPage(t, bctx)
	checkChart(t, st)
	checkAverageRate(t, b, bigCID, st.Transfers[bigCID].Meta)

	// The same page at 420 px: nothing sticks out.
	run(t, bctx, "narrow the page to 420 px", chromedp.EmulateViewport(420, 900),
		chromedp.Evaluate(`document.getElementById('toasts').replaceChildren()`, nil),
		// Wait for a snapshot drawn at the new width.
		chromedp.Poll(`document.querySelector('#bw-chart svg').getAttribute('width') <= 420`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	narrow := readPage(t, bctx)
	checkNarrow(t, narrow)
	checkChart(t, narrow)
	saveShot(t, bctx, "dashboard-420-live.png")
}

// checkAverageRate: the page shows a finished transfer's rate as its
// bytes over its duration, as the node reports them.
func checkAverageRate(t *testing.T, n *node.Node, c, meta string) {
	t.Helper()
	for _, tr := range n.Transfers() {
		if tr.CID != c {
			continue
		}
		took := tr.Finished.Sub(tr.Started).Seconds()
		want := float64(tr.BytesDone) / took
		m := regexp.MustCompile(`average ([0-9.]+) (B|KiB|MiB|GiB)/s · ([0-9]+) blocks`).FindStringSubmatch(meta)
		if m == nil {
			t.Fatalf("finished transfer shows %q: no average rate and block count", meta)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		v *= map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
		// Shown to three figures, from times the page reads to the ms.
		if math.Abs(v-want) > want*(0.005+0.002/took) {
			t.Errorf("finished transfer of %d bytes in %.3f s shows %q, want an average of %.0f B/s", tr.BytesDone, took, meta, want)
		}
		if m[3] != strconv.Itoa(tr.Blocks) || tr.Blocks == 0 {
			t.Errorf("finished transfer of %d blocks shows %q", tr.Blocks, meta)
		}
		return
	}
	t.Fatalf("node has no transfer of %s", c)
}

// needChromium returns the browser to drive, or skips the test without
// one, unless SHOAL_REQUIRE_BROWSER=1.
func needChromium(t *testing.T) string {
	t.Helper()
	chromium := findChromium()
	if chromium == "" {
		if os.Getenv("SHOAL_REQUIRE_BROWSER") == "1" {
			t.Fatal("SHOAL_REQUIRE_BROWSER=1 but no Chromium found: apt-get install -y chromium, or set SHOAL_CHROMIUM")
		}
		t.Skip("no Chromium on PATH (apt-get install -y chromium, or set SHOAL_CHROMIUM): skipping the browser test")
	}
	return chromium
}

// startBrowser starts headless chromium for as long as ctx lasts and
// returns the context of its first tab.
func startBrowser(t *testing.T, ctx context.Context, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1360, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(bcancel)
	// Start the browser on bctx itself: the browser lives as long as the
	// context of the first Run, and run's steps have shorter ones.
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return bctx
}

// textOf reads an element's text in one script call. chromedp.Text
// resolves a DOM node first and reads it in a second call; the live page
// may replace the node in between ("No node with given id found").
func textOf(sel string, out *string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).textContent`, sel), out)
}

// clickOn clicks the element sel names once it is visible, in one script
// call (for the same reason as textOf).
func clickOn(sel string) chromedp.Action {
	return chromedp.Tasks{
		chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click()`, sel), nil),
	}
}

// run runs browser actions for at most 20 seconds, failing the test with
// what it was doing and what the page said.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(sctx, actions...); err != nil {
		var text string
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		_ = chromedp.Run(dctx, textOf("body", &text))
		t.Fatalf("browser: %s: %v\npage text:\n%s", what, err, text)
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitPast waits until n's fetch of c (size bytes) holds pct percent.
func waitPast(t *testing.T, ctx context.Context, n *node.Node, c string, size, pct int) {
	t.Helper()
	waitFor(t, ctx, fmt.Sprintf("the fetch of %s to pass %d%%", c, pct), func() bool {
		for _, tr := range n.Transfers() {
			if tr.CID == c {
				return tr.BytesDone*100 >= uint64(size)*uint64(pct)
			}
		}
		return false
	})
}

// rootCID finds the root of the given size a seeder shares.
func rootCID(t *testing.T, n *node.Node, size int) string {
	t.Helper()
	roots, err := n.Roots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roots {
		if r.Size == uint64(size) {
			return r.CID
		}
	}
	t.Fatalf("no root of %d bytes among %+v", size, roots)
	return ""
}

// checkRoots: the node holds the fetched root, now pinned, and the
// uploaded file, pinned, of uploadSize bytes.
func checkRoots(t *testing.T, n *node.Node, fetched string, uploadSize uint64) {
	t.Helper()
	roots, err := n.Roots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	ok := 0
	for _, r := range roots {
		got = append(got, fmt.Sprintf("%s %d pinned=%v", r.CID, r.Size, r.Pinned))
		if (r.CID == fetched || r.Size == uploadSize) && r.Pinned {
			ok++
		}
	}
	if ok != 2 {
		t.Fatalf("roots after fetch, upload and pin: %v", got)
	}
}

// TestBrowserSwarmAndCluster drives a dashboard with the swarm extension
// on and an IPFS Cluster peer configured (serving ipfs-cluster v1.1.6's
// recorded answers): while the node fetches a 6-block file from a
// throttled seeder, the Swarm card draws the root's bar with one cell per
// block (6 leaves + the root = 7), every cell held by the one seeder, and
// the seeder's row says it unchokes this node while this node chokes it
// (it wants nothing); the content table's Cluster column shows a pin's
// copies pinned / wanted. SHOAL_SCREENSHOT_SWARM=path saves the page
// with the fetch half way (docs/dashboard-swarm.png).
func TestBrowserSwarmAndCluster(t *testing.T) {
	chromium := needChromium(t)
	big, small := randomData(6<<20, 31), randomData(300<<10, 32)
	smallCID := expectedCID(t, small)
	seed := startLoopbackNode(t, withExtension, func(c *node.Config) { c.Transfer.UploadLimit = 512 << 10 })
	res, err := seed.AddFile(context.Background(), bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	bigCID := res.CID.String()
	b := startLoopbackNode(t, withExtension, func(c *node.Config) { c.Cluster.RESTAddr = clustertest.ServeRecorded(t, smallCID) })
	if _, err := b.AddFile(context.Background(), bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	srv := startSiteEvery(t, b, "", 200*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bctx := startBrowser(t, ctx, chromium)
	var cluster, note string
	run(t, bctx, "load the dashboard and read the cluster column",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`#live[data-state="live"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#roots-table tr[data-cid="`+smallCID+`"] td.cluster .pill`, chromedp.ByQuery),
		textOf(`#roots-table tr[data-cid="`+smallCID+`"] td.cluster .pill`, &cluster),
		textOf(`#cluster-note`, &note),
	)
	// The recorded pin wants 2 to 3 copies; one peer reports "pinned".
	if cluster != "1 / 2–3" {
		t.Errorf("cluster column shows %q, want %q", cluster, "1 / 2–3")
	}
	if !strings.Contains(note, "127.0.0.1:") {
		t.Errorf("cluster note %q does not name the cluster's address", note)
	}

	if err := b.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Fetch(ctx, res.CID, "test"); err != nil {
		t.Fatal(err)
	}
	seedID := seed.Info().ID
	root := `.swarm-root[data-cid="` + bigCID + `"]`
	row := `#swarm-peers-table tr[data-peer="` + seedID + `"]`
	var cells, held []int
	var down, up, slots string
	run(t, bctx, "see the fetch's bar and the seeder unchoking this node",
		chromedp.Poll(fmt.Sprintf(`(() => {
			const r = document.querySelector('%s[data-role="fetching"]'), tr = document.querySelector('%s');
			return !!r && !!tr && r.querySelectorAll('svg.swarm-bar rect.cell').length === 7 &&
				tr.querySelector('td.down').textContent === 'unchoked';
		})()`, root, row), nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(fmt.Sprintf(`[...document.querySelectorAll('%s svg.swarm-bar rect.cell')].map((c) => +c.dataset.avail)`, root), &cells),
		chromedp.Evaluate(fmt.Sprintf(`[...document.querySelectorAll('%s svg.swarm-bar rect[data-local]')].map((c) => +c.dataset.local)`, root), &held),
		textOf(row+` td.down`, &down),
		textOf(row+` td.up`, &up),
		textOf(`#swarm-slots`, &slots),
	)
	if fmt.Sprint(cells) != "[1 1 1 1 1 1 1]" || len(held) != 7 || held[0] != 1 {
		t.Errorf("bar: availability %v, held here %v; want 7 cells held by the seeder, the root held here", cells, held)
	}
	if down != "unchoked" || up != "choked" {
		t.Errorf("seeder's row: it uploads %q, we upload %q; want unchoked and choked", down, up)
	}
	if !strings.HasPrefix(slots, "Upload slots 0 / ") {
		t.Errorf("slots line %q: this node uploads to nobody", slots)
	}
	saveShot(t, bctx, "dashboard-swarm.png")
	if path := os.Getenv("SHOAL_SCREENSHOT_SWARM"); path != "" {
		// For docs/dashboard-swarm.png: the fetch about half way, its bar
		// part held here.
		waitPast(t, ctx, b, bigCID, len(big), 45)
		var shot []byte
		run(t, bctx, "screenshot the swarm card",
			chromedp.Sleep(time.Second), // a snapshot drawn after the 45%
			chromedp.Evaluate(`document.getElementById('toasts').replaceChildren()`, nil),
			chromedp.FullScreenshot(&shot, 100))
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, bctx, "narrow the page to 420 px", chromedp.EmulateViewport(420, 900),
		chromedp.Poll(`document.querySelector('#bw-chart svg').getAttribute('width') <= 420`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	checkNarrow(t, readPage(t, bctx))
	saveShot(t, bctx, "dashboard-swarm-420.png")

	// A cluster that does not answer is a note above the content table,
	// which still lists the roots.
	dead := deadAddr(t)
	c := startLoopbackNode(t, func(c *node.Config) { c.Cluster.RESTAddr = dead })
	if _, err := c.AddFile(context.Background(), bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	var downNote, downCell string
	run(t, bctx, "load a dashboard whose cluster is down",
		chromedp.Navigate(startSiteEvery(t, c, "", 200*time.Millisecond).URL+"/"),
		chromedp.WaitVisible(`#roots-table tr[data-cid="`+smallCID+`"] td.cluster`, chromedp.ByQuery),
		textOf(`#cluster-note`, &downNote),
		textOf(`#roots-table tr[data-cid="`+smallCID+`"] td.cluster`, &downCell),
	)
	if !strings.HasPrefix(downNote, "IPFS Cluster at "+dead+" could not be read: ") || !strings.Contains(downNote, "ipfs-cluster-service") || downCell != "—" {
		t.Errorf("cluster down: note %q, cell %q", downNote, downCell)
	}
}
