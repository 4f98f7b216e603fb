package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// startSite serves NewSite for n on a loopback httptest server whose
// address is the API address, so the Host check passes.
func startSite(t *testing.T, n Node, token string) *httptest.Server {
	t.Helper()
	return startSiteEvery(t, n, token, 200*time.Millisecond)
}

// startSiteEvery is startSite with dashboard events every interval.
func startSiteEvery(t *testing.T, n Node, token string, interval time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg := DefaultAPIConfig(srv.Listener.Addr().String())
	cfg.Token = token
	cfg.EventInterval = interval
	cfg.GatewayURL = "http://127.0.0.1:8080"
	h, err := NewSite(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// shareAndFetch shares data on a, connects b to a and fetches it on b
// through b's API, waiting for the transfer to finish.
func shareAndFetch(t *testing.T, a, b *node.Node, bSite string, data []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := a.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(bSite+"/api/v1/fetch?wait=true&cid="+res.CID.String(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fetch through the API: %s: %s", resp.Status, body)
	}
	return res.CID.String()
}

// readSnapshot reads dashboard events until one satisfies ok.
func readSnapshot(t *testing.T, client *http.Client, base string, ok func(dashboardSnapshot) bool) dashboardSnapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/dashboard/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("dashboard events: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	var last dashboardSnapshot
	for sc.Scan() {
		data, found := strings.CutPrefix(sc.Text(), "data: ")
		if !found {
			continue
		}
		last = dashboardSnapshot{}
		if err := json.Unmarshal([]byte(data), &last); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if ok(last) {
			return last
		}
	}
	t.Fatalf("no snapshot matched before the stream ended (%v); last: %+v", sc.Err(), last)
	return last
}

// TestDashboardEventsAfterFetch: after B fetched A's file, B's dashboard
// stream shows the peer, the root, the finished transfer with A's
// contribution, the routing table and traffic totals that count the bytes.
func TestDashboardEventsAfterFetch(t *testing.T) {
	c := sim.NewCluster(t, 2, sim.ClusterOptions{})
	a, b := c.Node(0), c.Node(1)
	srv := startSite(t, b, "")
	data := randomData(3<<20+123, 7)
	root := shareAndFetch(t, a, b, srv.URL, data)
	aID := a.Info().ID

	d := readSnapshot(t, http.DefaultClient, srv.URL, func(d dashboardSnapshot) bool {
		return len(d.Peers) == 1 && len(d.Roots) == 1 && len(d.Transfers) == 1 && d.Buckets != nil
	})
	if d.Info.ID != b.Info().ID || d.Peers[0].ID != aID || d.Roots[0].CID != root || d.Roots[0].Size != uint64(len(data)) {
		t.Fatalf("snapshot = %+v", d)
	}
	tr := d.Transfers[0]
	if tr.CID != root || tr.State != node.TransferDone || tr.Size != uint64(len(data)) || len(tr.Peers) != 1 || tr.Peers[0].Peer != aID {
		t.Fatalf("transfer = %+v", tr)
	}
	if d.Traffic.In < uint64(len(data)) {
		t.Fatalf("traffic totals %+v: less than the %d bytes fetched", d.Traffic, len(data))
	}
	if d.API != srv.URL || d.Gateway == "" {
		t.Fatalf("API %q gateway %q", d.API, d.Gateway)
	}
}

func TestBandwidthHistory(t *testing.T) {
	h := newBandwidthHistory(3)
	t0 := time.Unix(1000, 0)
	h.add(t0, 100, 10, time.Second/2) // baseline
	if got := h.since(0); len(got) != 0 {
		t.Fatalf("baseline produced samples %v", got)
	}
	h.add(t0.Add(time.Second), 1124, 10, time.Second/2)
	h.add(t0.Add(1200*time.Millisecond), 5000, 10, time.Second/2) // too soon: skipped
	h.add(t0.Add(2*time.Second), 3172, 522, time.Second/2)
	got := h.since(0)
	if len(got) != 2 || got[0].InBps != 1024 || got[0].OutBps != 0 || got[1].InBps != 2048 || got[1].OutBps != 512 {
		t.Fatalf("samples = %+v", got)
	}
	h.add(t0.Add(3*time.Second), 100, 0, time.Second/2) // counters went down: new baseline
	for i := 4; i <= 6; i++ {
		h.add(t0.Add(time.Duration(i)*time.Second), uint64(100+i), 0, time.Second/2)
	}
	got = h.since(0)
	if len(got) != 3 || got[0].Time != t0.Add(4*time.Second).UnixMilli() || got[2].Time != t0.Add(6*time.Second).UnixMilli() {
		t.Fatalf("ring = %+v", got)
	}
	if later := h.since(got[1].Time); len(later) != 1 || later[0] != got[2] {
		t.Fatalf("since = %+v", later)
	}
}

// TestSitePageAndAssets: the page, its assets and the 404s, with the
// security headers that keep the page from being framed.
func TestSitePageAndAssets(t *testing.T) {
	srv := startSite(t, newMemNode(), "")
	for _, tc := range []struct {
		path, ctype string
		status      int
		contains    string
	}{
		{"/", "text/html; charset=utf-8", 200, `src="/assets/app.js"`},
		{"/assets/app.js", "text/javascript; charset=utf-8", 200, "/api/v1/dashboard/events"},
		{"/assets/app.css", "text/css; charset=utf-8", 200, "prefers-color-scheme"},
		{"/assets/icon.svg", "image/svg+xml", 200, "<svg"},
		{"/nothing", "application/json", 404, "the dashboard is at /"},
		{"/api/v1/nothing", "application/json", 404, "no API route"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: %s %q, body has %q: %v", tc.path, resp.Status, resp.Header.Get("Content-Type"), tc.contains, strings.Contains(string(body), tc.contains))
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: missing security headers: %v", tc.path, resp.Header)
		}
	}
	// Every asset the page names is served, and none is on another host.
	page, _ := assets.ReadFile("assets/index.html")
	for _, s := range []string{"http://", "https://", "//"} {
		for _, attr := range []string{`src="` + s, `href="` + s} {
			if strings.Contains(string(page), attr) {
				t.Errorf("the page links outside: %s", attr)
			}
		}
	}
}

// TestSiteGuard: the page, metrics and dashboard events refuse a foreign
// Host and Origin like the API does.
func TestSiteGuard(t *testing.T) {
	srv := startSite(t, newMemNode(), "")
	for _, path := range []string{"/", "/metrics", "/api/v1/dashboard/events", "/assets/app.js"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Host = "evil.example:" + strings.Split(srv.Listener.Addr().String(), ":")[1]
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s with a rebinding Host: %s, want 403", path, resp.Status)
		}
		req, _ = http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Origin", "http://evil.example")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s from a foreign Origin: %s, want 403", path, resp.Status)
		}
	}
}

// TestSiteTokenSignIn: with a token, the page asks for it; a wrong token
// gets no cookie; ?token= sets an HttpOnly SameSite=Strict cookie that
// then opens the page, the API, the events and /metrics; bearer headers
// still work; a cross-origin sign-in POST is refused.
func TestSiteTokenSignIn(t *testing.T) {
	const token = "s3cret-token"
	srv := startSite(t, newMemNode(), token)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `action="/signin"`) {
		t.Fatalf("page without token: %s %.80q", resp.Status, body)
	}
	for _, path := range []string{"/metrics", "/api/v1/id", "/api/v1/dashboard/events"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without token: %s, want 401", path, resp.Status)
		}
	}

	c := &http.Client{CheckRedirect: noRedirect}
	resp, err = c.PostForm(srv.URL+"/signin", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %s, cookies %v", resp.Status, resp.Cookies())
	}
	req, _ := http.NewRequest("POST", srv.URL+"/signin", strings.NewReader("token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-origin sign-in: %s, cookies %v", resp.Status, resp.Cookies())
	}

	resp, err = c.Get(srv.URL + "/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(cookies) != 1 ||
		!cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Value != token {
		t.Fatalf("sign-in: %s, Location %q, cookies %+v", resp.Status, resp.Header.Get("Location"), cookies)
	}

	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(srv.URL)
	jar.SetCookies(u, cookies)
	signed := &http.Client{Jar: jar}
	for _, path := range []string{"/", "/metrics", "/api/v1/id"} {
		resp, err := signed.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s signed in: %s", path, resp.Status)
		}
	}
	d := readSnapshot(t, signed, srv.URL, func(dashboardSnapshot) bool { return true })
	if d.Info.ID != "12D3KooWMemNode" {
		t.Fatalf("signed-in snapshot %+v", d)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics with a bearer token: %s", resp.Status)
	}
}
