package kuborpc

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestGuard: the RPC holds shoal's API rules: a wrong Host (DNS
// rebinding) and a foreign Origin are refused with 403, a missing or wrong
// token with 401, and the right token passes; the answers to refused
// requests are Kubo's plain-text kind, never a command's output.
func TestGuard(t *testing.T) {
	_, addr := startShoal(t, "s3cret")
	port := addr[strings.LastIndex(addr, ":")+1:]
	auth := [2]string{"Authorization", "Bearer s3cret"}
	for _, tc := range []struct {
		name   string
		header [][2]string
		status int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", [][2]string{{"Authorization", "Bearer nope"}}, http.StatusUnauthorized},
		{"basic auth", [][2]string{{"Authorization", "Basic czNjcmV0"}}, http.StatusUnauthorized},
		{"token", [][2]string{auth}, http.StatusOK},
		{"localhost name", [][2]string{auth, {"Host", "localhost:" + port}}, http.StatusOK},
		{"rebinding host", [][2]string{auth, {"Host", "evil.example:" + port}}, http.StatusForbidden},
		{"other port", [][2]string{auth, {"Host", "127.0.0.1:1"}}, http.StatusForbidden},
		{"foreign origin", [][2]string{auth, {"Origin", "http://evil.example"}}, http.StatusForbidden},
		{"gateway origin", [][2]string{auth, {"Origin", "http://127.0.0.1:8080"}}, http.StatusForbidden},
		{"own origin", [][2]string{auth, {"Origin", "http://" + addr}}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, addr, request{path: "/api/v0/version", header: tc.header})
			if got.status != tc.status {
				t.Fatalf("status %d, want %d: %s", got.status, tc.status, got.body)
			}
			if tc.status != http.StatusOK {
				if bytes.Contains(got.body, []byte(`"Version"`)) || got.header.Get("Content-Type") != "text/plain; charset=utf-8" {
					t.Errorf("refusal answered %q (%s)", got.body, got.header.Get("Content-Type"))
				}
			} else if !bytes.Contains(got.body, []byte(`"Version":"0.43.0+shoal-test"`)) {
				t.Errorf("version answered %s", got.body)
			}
		})
	}
}

// TestConfigValidate: a non-loopback RPC address needs a token.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{Addr: "127.0.0.1:5001"}, true},
		{Config{Addr: "localhost:5001"}, true},
		{Config{Addr: "0.0.0.0:5001"}, false},
		{Config{Addr: "0.0.0.0:5001", Token: "t"}, true},
		{Config{Addr: "5001"}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v", tc.cfg, err)
		}
	}
}

// TestKuboCLICat: Kubo's own CLI pointed at shoal's RPC (`ipfs --api
// /ip4/127.0.0.1/tcp/PORT cat CID`) prints the bytes shoal shares, with
// the token given as Kubo's --api-auth bearer:TOKEN; without it the CLI
// fails.
func TestKuboCLICat(t *testing.T) {
	bin := kuboBinary(t)
	n, addr := startShoal(t, "s3cret")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := deterministic(3<<20+7, 2)
	res, err := n.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	api := "/ip4/127.0.0.1/tcp/" + addr[strings.LastIndex(addr, ":")+1:]
	k := &kubo{bin: bin, repo: t.TempDir()} // no repo: the CLI only talks to --api
	out, err := k.ipfs(ctx, "--api", api, "--api-auth", "bearer:s3cret", "cat", res.CID.String())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("ipfs cat printed %d bytes, want the %d shared", len(out), len(data))
	}
	if out, err := k.ipfs(ctx, "--api", api, "cat", res.CID.String()); err == nil {
		t.Fatalf("ipfs cat without the token printed %d bytes", len(out))
	}
	_ = os.Remove(k.repo)
}
