package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonRPC: `shoal daemon --rpc-addr` serves Kubo's /api/v0 behind
// the daemon's token, answers `id` with the daemon's peer ID, refuses GET
// as Kubo does, and a non-loopback --rpc-addr without a token is refused
// at startup.
func TestDaemonRPC(t *testing.T) {
	const token = "rpc-s3cret"
	t.Setenv(tokenEnv, "")
	rpcAddr := "127.0.0.1:" + freePort(t)
	home := filepath.Join(t.TempDir(), "home")
	api, _ := startInProcessDaemon(t, home, "--api-token-file", writeToken(t, token), "--rpc-addr", rpcAddr)
	_, idBody := httpGet(t, api+"/api/v1/id", token)
	post := func(method, auth string) (int, string) {
		req, err := http.NewRequest(method, "http://"+rpcAddr+"/api/v0/id", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, body := post("POST", token); status != http.StatusOK || !strings.Contains(body, `"ID":"`) || !strings.Contains(idBody, strings.Split(strings.Split(body, `"ID":"`)[1], `"`)[0]) {
		t.Fatalf("POST /api/v0/id: %d %s (API id %s)", status, body, idBody)
	}
	if status, _ := post("POST", ""); status != http.StatusUnauthorized {
		t.Errorf("POST /api/v0/id without the token: %d, want 401", status)
	}
	if status, body := post("GET", token); status != http.StatusMethodNotAllowed || body != "405 - Method Not Allowed\n" {
		t.Errorf("GET /api/v0/id: %d %q, want Kubo's 405", status, body)
	}
	stderr := failDaemon(t, "--home", filepath.Join(t.TempDir(), "h2"), "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc-addr", "0.0.0.0:0")
	wantStderr(t, stderr, "api.rpc_addr", "token")
}

// TestDaemonClusterAddr: `shoal daemon --cluster-addr` points the
// dashboard's cluster view at an IPFS Cluster peer's REST API (here one
// that is down: the API says 502 naming the address), and a value that is
// not HOST:PORT is refused at startup naming the config key.
func TestDaemonClusterAddr(t *testing.T) {
	t.Setenv(tokenEnv, "")
	dead := "127.0.0.1:" + freePort(t)
	api, _ := startInProcessDaemon(t, filepath.Join(t.TempDir(), "home"), "--cluster-addr", dead)
	if status, body := httpGet(t, api+"/api/v1/cluster", ""); status != http.StatusBadGateway || !strings.Contains(body, dead) {
		t.Fatalf("GET /api/v1/cluster with the cluster down: %d %s, want 502 naming %s", status, body, dead)
	}
	stderr := failDaemon(t, "--home", filepath.Join(t.TempDir(), "h2"), "--listen", "/ip4/127.0.0.1/tcp/0", "--cluster-addr", "no-port")
	wantStderr(t, stderr, "cluster.rest_addr", "no-port")
}
