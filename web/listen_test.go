package web

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// testLogger logs to t until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

// pipeListener hands out the server ends of net.Pipe connections, so a
// server runs inside a synctest bubble.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (p *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeListener) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dial opens a connection; the server may not have accepted it yet.
func (p *pipeListener) dial() net.Conn {
	s, c := net.Pipe()
	go func() {
		select {
		case p.conns <- s:
		case <-p.done:
			s.Close()
		}
	}()
	return c
}

// serveInBubble serves h with cfg on a pipe listener until the test ends.
func serveInBubble(t *testing.T, h http.Handler, cfg ServerConfig) *pipeListener {
	t.Helper()
	pl := newPipeListener()
	srv, lim, err := NewServer(pl, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lim) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	return pl
}

// get sends GET path on c and returns the response body.
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) string {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: pipe\r\n\r\n", path); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %q %v", path, resp.Status, b, err)
	}
	return string(b)
}

// closedAt reads c in the background and reports when the server closed
// it (the read ends with EOF).
func closedAt(br *bufio.Reader) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		_, err := br.ReadByte()
		if err == io.EOF {
			ch <- time.Now()
		}
		close(ch)
	}()
	return ch
}

// TestServerClosesIdleConns: with the defaults the daemon uses, a
// connection kept alive after a request is closed IdleTimeout after its
// response, and connections that never finish their headers (nothing
// sent, or half a header) are closed ReadHeaderTimeout after they
// opened. In virtual time, so the defaults themselves are tested.
func TestServerClosesIdleConns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultServerConfig(DefaultAPIMaxConns)
		pl := serveInBubble(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}), cfg)

		start := time.Now()
		silent := bufio.NewReader(pl.dial())
		half := pl.dial()
		if _, err := io.WriteString(half, "GET / HTTP/1.1\r\nHost: pipe\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		halfR := bufio.NewReader(half)
		kept := pl.dial()
		keptR := bufio.NewReader(kept)
		if body := get(t, kept, keptR, "/"); body != "ok" {
			t.Fatalf("body %q, want ok", body)
		}
		answered := time.Now()
		silentClosed, halfClosed, keptClosed := closedAt(silent), closedAt(halfR), closedAt(keptR)

		time.Sleep(cfg.IdleTimeout + cfg.ReadHeaderTimeout)
		synctest.Wait()
		for _, c := range []struct {
			name string
			ch   <-chan time.Time
			from time.Time
			want time.Duration
		}{
			{"never-used connection", silentClosed, start, cfg.ReadHeaderTimeout},
			{"half-sent headers", halfClosed, start, cfg.ReadHeaderTimeout},
			{"kept-alive connection", keptClosed, answered, cfg.IdleTimeout},
		} {
			select {
			case at, ok := <-c.ch:
				if !ok {
					t.Errorf("%s: read ended without EOF", c.name)
				} else if got := at.Sub(c.from); got != c.want {
					t.Errorf("%s closed after %v, want %v", c.name, got, c.want)
				}
			default:
				t.Errorf("%s still open after %v", c.name, cfg.IdleTimeout+cfg.ReadHeaderTimeout)
			}
		}
	})
}

// TestConnLimiterEvictsIdleAndWaitsWhenBusy: with a cap of 2, a new
// connection closes the one idle the longest; when both are busy with
// requests the new one waits, and is served as soon as one finishes.
func TestConnLimiterEvictsIdleAndWaitsWhenBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		entered := map[string]int{}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			entered[r.URL.Path]++
			mu.Unlock()
			if r.URL.Path == "/slow" {
				<-release
			}
			_, _ = io.WriteString(w, r.URL.Path)
		})
		count := func(path string) int {
			mu.Lock()
			defer mu.Unlock()
			return entered[path]
		}
		cfg := DefaultServerConfig(2)
		cfg.Logger = testLogger(t)
		pl := serveInBubble(t, h, cfg)

		// a and b served once each and now idle, a the longest.
		a, b := pl.dial(), pl.dial()
		aR, bR := bufio.NewReader(a), bufio.NewReader(b)
		// (Waiting lets the server mark each idle after its response.)
		get(t, a, aR, "/a")
		synctest.Wait()
		get(t, b, bR, "/b")
		synctest.Wait()
		aClosed := closedAt(aR)
		c := pl.dial()
		cR := bufio.NewReader(c)
		if body := get(t, c, cR, "/c"); body != "/c" {
			t.Fatalf("c: %q", body)
		}
		synctest.Wait()
		if _, ok := <-aClosed; !ok {
			t.Fatal("the longest-idle connection a was not closed for c")
		}

		// b (still open: a was idle longer) and c busy: d waits until one
		// of them finishes.
		for _, conn := range []net.Conn{b, c} {
			fmt.Fprintf(conn, "GET /slow HTTP/1.1\r\nHost: pipe\r\n\r\n")
		}
		synctest.Wait()
		if n := count("/slow"); n != 2 {
			t.Fatalf("%d slow requests running on b and c, want 2 (was b closed?)", n)
		}
		d := pl.dial()
		dR := bufio.NewReader(d)
		dDone := make(chan string, 1)
		go func() {
			fmt.Fprintf(d, "GET /d HTTP/1.1\r\nHost: pipe\r\n\r\n")
			resp, err := http.ReadResponse(dR, nil)
			if err != nil {
				dDone <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			dDone <- string(body)
		}()
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := count("/d"); n != 0 {
			t.Fatalf("d was served with 2 busy connections and a cap of 2")
		}
		// b's and c's pipes need reading for their handlers to finish.
		go func() { _, _ = io.Copy(io.Discard, bR) }()
		go func() { _, _ = io.Copy(io.Discard, cR) }()
		close(release)
		if body := <-dDone; body != "/d" {
			t.Fatalf("d after a slot freed: %q, want /d", body)
		}
	})
}

// TestServerKeepsLongStreams: the timeouts bound idle connections only: a
// response streamed for far longer than the idle and header timeouts, and
// an upload sent slowly for as long, both complete.
func TestServerKeepsLongStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultServerConfig(DefaultAPIMaxConns)
		long := 3 * (cfg.IdleTimeout + cfg.ReadHeaderTimeout)
		const chunks = 30
		pl := serveInBubble(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				fmt.Fprintf(w, "got %d bytes", len(b))
				return
			}
			rc := http.NewResponseController(w)
			for i := range chunks {
				fmt.Fprintf(w, "chunk %d\n", i)
				if err := rc.Flush(); err != nil {
					return
				}
				time.Sleep(long / chunks)
			}
		}), cfg)

		down := pl.dial()
		start := time.Now()
		fmt.Fprintf(down, "GET /stream HTTP/1.1\r\nHost: pipe\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(down), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || strings.Count(string(body), "chunk ") != chunks || time.Since(start) < long {
			t.Fatalf("stream: %d chunks in %v, %v; want %d over %v", strings.Count(string(body), "chunk "), time.Since(start), err, chunks, long)
		}

		up := pl.dial()
		upR := bufio.NewReader(up)
		fmt.Fprintf(up, "POST /upload HTTP/1.1\r\nHost: pipe\r\nContent-Length: %d\r\n\r\n", chunks*1000)
		for range chunks {
			time.Sleep(long / chunks)
			if _, err := up.Write(make([]byte, 1000)); err != nil {
				t.Fatalf("slow upload cut off after %v: %v", time.Since(start), err)
			}
		}
		resp, err = http.ReadResponse(upR, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("got %d bytes", chunks*1000); string(body) != want {
			t.Fatalf("slow upload: %s %q, want %q", resp.Status, body, want)
		}
	})
}
