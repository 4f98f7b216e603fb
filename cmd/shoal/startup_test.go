package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real `shoal daemon` refuses to start, with exit 1 and a message
// naming the cause and what to do, instead of a panic (issue #15 items 1
// and 8): a second daemon on a home in use, a libp2p port another
// program holds, the TCP port of a running daemon, and damaged files in
// the home.

// failDaemon runs `shoal daemon` with args, which must exit non-zero on
// its own, and returns its stderr.
func failDaemon(t *testing.T, args ...string) string {
	t.Helper()
	bin := shoalBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"daemon", "--no-mdns", "--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0", "--log-level", "warn"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("shoal %s still ran after a minute; stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("shoal %s: %v; want exit 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	out := stdout.String() + stderr.String()
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(out, bad) {
			t.Fatalf("shoal %s printed %q:\n%s", strings.Join(args, " "), bad, out)
		}
	}
	return stderr.String()
}

func wantStderr(t *testing.T, stderr string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(stderr, p) {
			t.Errorf("stderr %q\ndoes not contain %q", stderr, p)
		}
	}
}

func TestDaemonStartupSecondOnSameHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	first := startDaemon(t, home)
	stderr := failDaemon(t, "--home", home, "--listen", "/ip4/127.0.0.1/tcp/0")
	wantStderr(t, stderr, fmt.Sprintf("another shoal daemon (pid %d) is using home %s", first.cmd.Process.Pid, home), "stop it first")
	first.cli("id") // the first one is unharmed
}

func TestDaemonStartupPortTaken(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	stderr := failDaemon(t, "--home", t.TempDir(), "--listen", addr)
	wantStderr(t, stderr, "listen "+addr+": address already in use", "pass --listen with another port")
}

// TestDaemonStartupSameTCPPort: a second daemon given the first one's TCP
// port fails; before, SO_REUSEPORT let it bind that port too.
func TestDaemonStartupSameTCPPort(t *testing.T) {
	dir := t.TempDir()
	first := startDaemon(t, filepath.Join(dir, "a"))
	tcp, _, _ := strings.Cut(first.addr, "/p2p/")
	stderr := failDaemon(t, "--home", filepath.Join(dir, "b"), "--listen", tcp)
	wantStderr(t, stderr, "listen "+tcp+": address already in use")
	first.cli("id")
}

func TestDaemonStartupDamagedHomeFiles(t *testing.T) {
	for _, tc := range []struct{ file, content, want, todo string }{
		{"roots.json", "{not json", "is not a valid roots file", "fix it or delete it"},
		{"identity.key", "not a key", "is damaged", "restore it from a backup, or delete it"},
	} {
		home := t.TempDir()
		if err := os.WriteFile(filepath.Join(home, tc.file), []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		stderr := failDaemon(t, "--home", home, "--listen", "/ip4/127.0.0.1/tcp/0")
		wantStderr(t, stderr, filepath.Join(home, tc.file)+" "+tc.want, tc.todo)
	}
}
