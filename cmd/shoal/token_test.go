package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
)

const flagWarning = "--api-token puts the token on the command line, where every local user can read it"

func writeToken(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestApplyDaemonToken: the daemon's token comes from --api-token (with a
// warning saying why and what instead), --api-token-file,
// $SHOAL_API_TOKEN, then the config's api.token_file or api.token, in
// that order; bad combinations and files are errors naming the cause.
func TestApplyDaemonToken(t *testing.T) {
	flagFile, cfgFile, empty := writeToken(t, "from-file"), writeToken(t, "from-config-file"), writeToken(t, "  ")
	missing := filepath.Join(t.TempDir(), "absent")
	for _, c := range []struct {
		name      string
		flags     tokenFlags
		env       string
		api       node.APIConfig
		want      string
		warn      bool
		errSubstr string
	}{
		{name: "flag", flags: tokenFlags{token: "from-flag"}, env: "from-env", want: "from-flag", warn: true},
		{name: "file flag", flags: tokenFlags{file: flagFile}, env: "from-env", api: node.APIConfig{Token: "cfg"}, want: "from-file"},
		{name: "env", env: "from-env", api: node.APIConfig{TokenFile: cfgFile}, want: "from-env"},
		{name: "config file", api: node.APIConfig{TokenFile: cfgFile}, want: "from-config-file"},
		{name: "config token", api: node.APIConfig{Token: "cfg"}, want: "cfg"},
		{name: "none", want: ""},
		{name: "both flags", flags: tokenFlags{token: "x", file: flagFile}, errSubstr: "--api-token and --api-token-file both given"},
		{name: "missing file", flags: tokenFlags{file: missing}, errSubstr: missing},
		{name: "empty file", api: node.APIConfig{TokenFile: empty}, errSubstr: empty + " holds no token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(tokenEnv, c.env)
			cfg := node.DefaultConfig("")
			cfg.API.Token, cfg.API.TokenFile = c.api.Token, c.api.TokenFile
			var stderr bytes.Buffer
			err := applyDaemonToken(&c.flags, &cfg, &stderr)
			if c.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), c.errSubstr) {
					t.Fatalf("error %v, want one containing %q", err, c.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.API.Token != c.want || cfg.API.TokenFile != "" {
				t.Errorf("token %q (file %q), want %q", cfg.API.Token, cfg.API.TokenFile, c.want)
			}
			if got := strings.Contains(stderr.String(), flagWarning) && strings.Contains(stderr.String(), tokenEnv); got != c.warn {
				t.Errorf("warning printed: %v, want %v (stderr %q)", got, c.warn, stderr.String())
			}
		})
	}
}

// TestCLITokenSources: a client command finds the token in
// $SHOAL_API_TOKEN, --api-token-file, --api-token (with a warning on
// stderr) or the home's config, and without one gets the daemon's 401.
func TestCLITokenSources(t *testing.T) {
	const token = "cli-s3cret"
	d := startTestDaemon(t, token)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, APIFile), []byte(d.url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tokenEnv, "")
	id := d.n.Info().ID
	check := func(name string, wantWarn bool, args ...string) {
		t.Helper()
		code, out, errOut := shoal(t, append([]string{"id", "--home", home}, args...)...)
		if code != 0 || !strings.Contains(out, id) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
		if got := strings.Contains(errOut, flagWarning); got != wantWarn {
			t.Errorf("%s: warning printed %v, want %v (stderr %q)", name, got, wantWarn, errOut)
		}
	}

	code, _, errOut := shoal(t, "id", "--home", home)
	if code != 1 || !strings.Contains(errOut, "needs a token") || !strings.Contains(errOut, tokenEnv) {
		t.Errorf("no token: exit %d, stderr %q", code, errOut)
	}
	check("--api-token-file", false, "--api-token-file", writeToken(t, token))
	check("--api-token", true, "--api-token", token)
	code, _, errOut = shoal(t, "id", "--home", home, "--api-token", token, "--api-token-file", writeToken(t, token))
	if code != 1 || !strings.Contains(errOut, "both given") {
		t.Errorf("both flags: exit %d, stderr %q", code, errOut)
	}
	t.Setenv(tokenEnv, token)
	check("$SHOAL_API_TOKEN", false)
	t.Setenv(tokenEnv, "")

	// The home's own config: api.token_file, read by the CLI as by the
	// daemon (only when the API address comes from the home).
	cfg := node.DefaultConfig(home)
	cfg.API.TokenFile = writeToken(t, token)
	if err := node.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	check("api.token_file in the home's config", false)
	code, _, errOut = shoal(t, "id", "--home", home, "--api", d.url)
	if code != 1 || !strings.Contains(errOut, "needs a token") {
		t.Errorf("--api with a home token: exit %d, stderr %q (the home's token must not go to another API)", code, errOut)
	}
}

// TestDaemonTokenFileGuardsEverything: a real daemon given
// --api-token-file refuses every route that shows data — API, dashboard,
// metrics, Go's profiler — without the token (401) and serves it with
// the token; the token is not on its command line and no warning is
// printed.
func TestDaemonTokenFileGuardsEverything(t *testing.T) {
	const token = "daemon-s3cret"
	t.Setenv(tokenEnv, "")
	home := filepath.Join(t.TempDir(), "home")
	api, stderr := startInProcessDaemon(t, home, "--api-token-file", writeToken(t, token))
	paths := []string{"/", "/assets/app.js", "/metrics", "/api/v1/id", "/api/v1/peers", "/api/v1/transfers",
		"/api/v1/ls", "/api/v1/stat", "/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1",
		"/debug/pprof/heap", "/debug/pprof/symbol"}
	for _, p := range paths {
		status, body := httpGet(t, api+p, "")
		if status != http.StatusUnauthorized {
			t.Errorf("GET %s without token: %d, want 401 (body %.100q)", p, status, body)
		}
		status, body = httpGet(t, api+p, "wrong")
		if status != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401 (body %.100q)", p, status, body)
		}
		status, body = httpGet(t, api+p, token)
		if status != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s with the token: %d, %d bytes, want 200 with a body", p, status, len(body))
		}
	}
	// Streams, long profiles and state changes: refused without the token.
	const cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/events"}, {"GET", "/api/v1/dashboard/events"}, {"GET", "/api/v1/cat/" + cid},
		{"GET", "/api/v1/get/" + cid}, {"GET", "/api/v1/stat/" + cid}, {"GET", "/api/v1/transfers/1"},
		{"GET", "/debug/pprof/profile"}, {"GET", "/debug/pprof/trace"}, {"POST", "/api/v1/add"},
		{"POST", "/api/v1/fetch"}, {"POST", "/api/v1/connect"}, {"POST", "/api/v1/pin/" + cid},
		{"POST", "/api/v1/unpin/" + cid}, {"POST", "/api/v1/gc"}, {"POST", "/api/v1/repo/verify"},
	} {
		req, err := http.NewRequest(r.method, api+r.path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without token: %s, want 401", r.method, r.path, resp.Status)
		}
	}
	if _, body := httpGet(t, api+"/debug/pprof/cmdline", token); strings.Contains(body, token) {
		t.Errorf("the daemon's command line holds the token: %q", body)
	}
	if strings.Contains(stderr.String(), flagWarning) {
		t.Errorf("warning printed for --api-token-file: %s", stderr.String())
	}
}

// startInProcessDaemon runs `shoal daemon` on home inside the test
// process, on loopback with free ports, until the test ends; it returns
// the API URL once the daemon has written its api file, and its stderr.
func startInProcessDaemon(t *testing.T, home string, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"daemon", "--home", home, "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0",
			"--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0", "--log-level", "warn"}, args...),
			strings.NewReader(""), &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("daemon exit %d; stderr:\n%s", code, stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(home, APIFile))
		if err == nil {
			return strings.TrimSpace(string(b)), &stderr
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("daemon exited %d before writing its api file; stderr:\n%s", code, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no api file after 60 s; stderr:\n%s", stderr.String())
		}
	}
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// syncBuffer is a bytes.Buffer a running command writes to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Bytes is a copy of what was written so far.
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
