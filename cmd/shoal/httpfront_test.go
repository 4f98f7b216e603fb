package main

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
)

// TestDaemonConnCapFromConfig: the daemon's API takes its connection cap
// from api.max_conns: with 2, two idle connections and then a request
// leave the request answered and the longest-idle connection closed.
func TestDaemonConnCapFromConfig(t *testing.T) {
	t.Setenv(tokenEnv, "")
	home := filepath.Join(t.TempDir(), "home")
	if err := ensureHome(home, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.API.MaxConns = 2
	if err := node.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	api, _ := startInProcessDaemon(t, home)
	host := strings.TrimPrefix(api, "http://")
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 60 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(api + "/api/v1/id")
	if err != nil {
		t.Fatalf("request beside 2 idle connections with api.max_conns = 2: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"id"`) {
		t.Fatalf("/api/v1/id: %s %q", resp.Status, b)
	}
	// The longest-idle connection was closed to make room while the
	// request was accepted, so before its answer came back.
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle[0].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("first idle connection: read %d bytes, %v; want EOF (closed for the new one)", n, err)
	}
}
