package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/api"
)

// shoalStdin runs the CLI in-process with stdin.
func shoalStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestCLIShareKeepsNames: share keeps a file's and a directory's base
// name, --name overrides it, "share -" reads stdin (unnamed unless
// --name); ls and stat show the names, and a bad --name is refused.
func TestCLIShareKeepsNames(t *testing.T) {
	d := startTestDaemon(t, "")
	src := filepath.Join(t.TempDir(), "report v1.txt")
	if err := os.WriteFile(src, []byte("quarterly numbers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, _ := writeTestTree(t)

	var res api.AddResult
	if err := json.Unmarshal([]byte(mustShoal(t, "share", "--api", d.url, "--json", src)), &res); err != nil || res.Name != "report v1.txt" {
		t.Fatalf("share --json of a file: %+v, %v", res, err)
	}
	fileCID := res.CID
	dirCID := lastLine(mustShoal(t, "share", "--api", d.url, dir))
	if err := json.Unmarshal([]byte(mustShoal(t, "share", "--api", d.url, "--name", "other.txt", "--json", filepath.Join(dir, "a.txt"))), &res); err != nil || res.Name != "other.txt" {
		t.Fatalf("share --name other.txt --json: %+v, %v", res, err)
	}

	code, out, errOut := shoalStdin(t, "from a pipe\n", "share", "--api", d.url, "--name", "piped.txt", "-")
	if code != 0 {
		t.Fatalf("share - --name: exit %d: %s", code, errOut)
	}
	pipedCID := lastLine(out)
	code, out, errOut = shoalStdin(t, "unnamed bytes\n", "share", "--api", d.url, "-")
	if code != 0 {
		t.Fatalf("share -: exit %d: %s", code, errOut)
	}
	unnamedCID := lastLine(out)
	if c := lastLine(mustShoal(t, "cid", src)); c != fileCID {
		t.Fatalf("share printed %s, cid gives %s", fileCID, c)
	}

	var ls []lsEntry
	if err := json.Unmarshal([]byte(mustShoal(t, "ls", "--api", d.url, "--json")), &ls); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, e := range ls {
		names[e.CID] = e.Name
	}
	want := map[string]string{fileCID: "report v1.txt", dirCID: filepath.Base(dir), pipedCID: "piped.txt", unnamedCID: ""}
	for c, w := range want {
		if got, ok := names[c]; !ok || got != w {
			t.Errorf("ls --json: %s named %q (listed: %v), want %q", c, got, ok, w)
		}
	}
	text := mustShoal(t, "ls", "--api", d.url)
	if !strings.Contains(text, "NAME") || !strings.Contains(text, "report v1.txt") || !strings.Contains(text, "piped.txt") {
		t.Fatalf("ls:\n%s", text)
	}

	if out := mustShoal(t, "stat", "--api", d.url, fileCID); !strings.Contains(out, "name:    report v1.txt\n") {
		t.Fatalf("stat:\n%s", out)
	}
	var st api.CIDStat
	if err := json.Unmarshal([]byte(mustShoal(t, "stat", "--api", d.url, "--json", dirCID+"/sub")), &st); err != nil || st.Name != "sub" {
		t.Fatalf("stat --json CID/sub: %+v, %v", st, err)
	}

	code, _, errOut = shoal(t, "share", "--api", d.url, "--name", "a/b", src)
	if code != 1 || !strings.Contains(errOut, `"a/b" contains "/"`) {
		t.Fatalf("share --name a/b: exit %d, stderr %q", code, errOut)
	}
}

func TestVersionFlag(t *testing.T) {
	flag := mustShoal(t, "--version")
	cmd := mustShoal(t, "version")
	if flag != cmd || !strings.HasPrefix(flag, "shoal ") {
		t.Fatalf("shoal --version printed %q, shoal version %q", flag, cmd)
	}
}
