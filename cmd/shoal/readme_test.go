package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// walkthroughMarker precedes the README's loopback walk-through block.
const walkthroughMarker = "<!-- walkthrough:"

// readmeBlock returns the first ```sh block after marker in README.md.
func readmeBlock(t *testing.T, readme []byte, marker string) string {
	t.Helper()
	_, after, ok := bytes.Cut(readme, []byte(marker))
	if !ok {
		t.Fatalf("README.md has no %q marker", marker)
	}
	_, body, ok := bytes.Cut(after, []byte("```sh\n"))
	if !ok {
		t.Fatalf("no ```sh block after %q in README.md", marker)
	}
	block, _, ok := bytes.Cut(body, []byte("\n```"))
	if !ok {
		t.Fatalf("the block after %q is not closed", marker)
	}
	return string(block) + "\n"
}

// portRe finds the ports the walk-through binds: in /tcp/N multiaddrs
// and 127.0.0.1:N addresses.
var portRe = regexp.MustCompile(`(/tcp/|127\.0\.0\.1:)([0-9]{2,5})\b`)

// freePort is a TCP port on 127.0.0.1 nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestREADMEWalkthrough runs the README's loopback walk-through as
// printed, with bash and the built binary first on PATH, in a temporary
// directory holding a copy of README.md. Only its /tmp/ paths (to the
// test's directory) and port numbers (to free ones) are rewritten, so
// parallel runs and a machine's own daemon do not collide. The fetched
// copy must equal README.md and the range request must return its first
// 100 bytes.
func TestREADMEWalkthrough(t *testing.T) {
	bin := shoalBinary(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("the walk-through is a bash script; no bash here")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the walk-through uses curl; no curl here")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := readmeBlock(t, readme, walkthroughMarker)

	dir := t.TempDir()
	ports := map[string]string{}
	script := portRe.ReplaceAllStringFunc(block, func(m string) string {
		sub := portRe.FindStringSubmatch(m)
		if ports[sub[2]] == "" {
			ports[sub[2]] = freePort(t)
		}
		return sub[1] + ports[sub[2]]
	})
	script = strings.ReplaceAll(script, "/tmp/", dir+"/")
	if len(ports) < 4 || !strings.Contains(script, dir+"/a") {
		t.Fatalf("the walk-through no longer looks like one (ports %v):\n%s", ports, block)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), readme, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`--home (\S+)`).FindAllStringSubmatch(script, -1) {
		home := m[1]
		t.Cleanup(func() { stopHome(t, bin, home) })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "SHOAL_API_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // a daemon left in the background holds stdout open
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README walk-through failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s%s", err, script, stdout.String(), stderr.String(), daemonLogs(dir))
	}
	got, err := os.ReadFile(filepath.Join(dir, "readme.copy"))
	if err != nil || !bytes.Equal(got, readme) {
		t.Fatalf("fetched copy: %d bytes, %v; want README.md's %d bytes\nstdout:\n%s", len(got), err, len(readme), stdout.String())
	}
	if !bytes.HasSuffix(stdout.Bytes(), readme[:100]) {
		t.Fatalf("the range request did not print README.md's first 100 bytes last; stdout:\n%q", stdout.String())
	}
}

// stopHome stops the daemon of home, if one still runs, through `shoal
// stop` as a user would.
func stopHome(t *testing.T, bin, home string) {
	if _, err := os.Stat(filepath.Join(home, PIDFile)); err != nil {
		return
	}
	out, err := exec.Command(bin, "stop", "--home", home).CombinedOutput()
	if err != nil {
		t.Errorf("shoal stop --home %s: %v: %s", home, err, out)
	}
	if _, err := os.Stat(filepath.Join(home, PIDFile)); err == nil {
		t.Errorf("%s still has %s after shoal stop", home, PIDFile)
	}
}

// daemonLogs prints the daemon.log of every home under dir.
func daemonLogs(dir string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "*", DaemonLogFile))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		fmt.Fprintf(&b, "\n%s:\n%s", l, data)
	}
	return b.String()
}
