//go:build linux

package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	apiv1 "github.com/shoalnet/shoal/api"
)

// TestAPIAnswersBesideThousandIdleConns reproduces "accept4: too many open
// files": with the open-file limit set to what this test's own 1,000
// client sockets need plus the API's connection cap and some slack, it
// opens 1,000 connections to a real API listener — most idle from the
// start, some with half-sent headers, some kept alive after a request —
// and then a normal request must still be answered, with the node's
// identity. Without the cap every server-side socket takes a descriptor
// and the server can no longer accept (or the test cannot dial).
func TestAPIAnswersBesideThousandIdleConns(t *testing.T) {
	const clients = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := newMemNode()
	cfg := DefaultAPIConfig(ln.Addr().String())
	h, err := NewSite(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	scfg := DefaultServerConfig(DefaultAPIMaxConns)
	scfg.Logger = testLogger(t)
	srv, lim, err := NewServer(ln, h, scfg)
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

	used, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	limitOpenFiles(t, uint64(len(used)+clients+DefaultAPIMaxConns+200))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var d net.Dialer
	conns := make([]net.Conn, 0, clients)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	host := ln.Addr().String()
	for i := range clients {
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			t.Fatalf("opening connection %d of %d: %v", i+1, clients, err)
		}
		conns = append(conns, c)
		switch {
		case i%50 == 1: // half-sent headers (slowloris)
			fmt.Fprintf(c, "GET /api/v1/id HTTP/1.1\r\nHost: %s\r\nX-Slow: ", host)
		case i%50 == 2: // a finished request, then kept alive and idle
			fmt.Fprintf(c, "GET /api/v1/id HTTP/1.1\r\nHost: %s\r\n\r\n", host)
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("keep-alive request on connection %d: %v", i+1, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+host+"/api/v1/id", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("API request beside %d open connections: %v", clients, err)
	}
	defer resp.Body.Close()
	var id apiv1.ID
	if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
		t.Fatalf("reading /api/v1/id: %v", err)
	}
	if resp.StatusCode != http.StatusOK || id.ID != n.Info().ID {
		t.Fatalf("/api/v1/id: %s, id %q, want 200 and %q", resp.Status, id.ID, n.Info().ID)
	}
}

// limitOpenFiles sets this process's soft open-file limit to n for the
// rest of the test (then restores it).
func limitOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if n > old.Max {
		t.Skipf("the hard open-file limit %d is below the %d this test needs", old.Max, n)
	}
	lim := old
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restoring the open-file limit: %v", err)
		}
	})
}
