package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDaemonDetachFailure: a detached daemon that cannot start makes
// `daemon --detach` exit non-zero with the daemon's own error from its
// log, and leaves no daemon behind; `shoal stop` with no daemon says so.
func TestDaemonDetachFailure(t *testing.T) {
	bin := shoalBinary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	home := filepath.Join(t.TempDir(), "h")
	cmd := exec.Command(bin, "daemon", "--detach", "--home", home, "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--api-addr", taken.Addr().String(), "--gateway-addr", "127.0.0.1:0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("daemon --detach on a taken API address: %v, want exit 1\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"the daemon exited before its API answered", "API address " + taken.Addr().String(), "address already in use"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("a failed start printed on stdout: %q", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(home, PIDFile)); !os.IsNotExist(err) {
		t.Errorf("a failed start left %s: %v", PIDFile, err)
	}

	out, err := exec.Command(bin, "stop", "--home", home).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no shoal daemon for home "+home) {
		t.Fatalf("stop without a daemon: %v: %s", err, out)
	}
}

// TestDaemonDetachAndStop: --detach returns with the API answering (the
// next command works at once) and prints the API and log; stop ends the
// process and its pid and api files are gone.
func TestDaemonDetachAndStop(t *testing.T) {
	bin := shoalBinary(t)
	home := filepath.Join(t.TempDir(), "h")
	t.Cleanup(func() { stopHome(t, bin, home) })
	out, err := exec.Command(bin, "daemon", "--detach", "--home", home, "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0").CombinedOutput()
	if err != nil {
		t.Fatalf("daemon --detach: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "log:  "+filepath.Join(home, DaemonLogFile)) || !strings.Contains(string(out), "api:  http://127.0.0.1:") {
		t.Fatalf("daemon --detach printed %q", out)
	}
	if id, err := exec.Command(bin, "id", "--home", home).CombinedOutput(); err != nil || !strings.Contains(string(id), "peer ID:") {
		t.Fatalf("id right after --detach: %v: %s", err, id)
	}
	pid, err := readPIDFile(home)
	if err != nil || pid == 0 || !running(pid) {
		t.Fatalf("pid file: %d, %v", pid, err)
	}
	if out, err := exec.Command(bin, "stop", "--home", home).CombinedOutput(); err != nil || !strings.Contains(string(out), "stopped the shoal daemon") {
		t.Fatalf("stop: %v: %s", err, out)
	}
	if running(pid) {
		t.Fatalf("process %d still runs after stop", pid)
	}
	for _, f := range []string{PIDFile, APIFile} {
		if _, err := os.Stat(filepath.Join(home, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after stop: %v", f, err)
		}
	}
}

// TestMakeDemo: the README's first command is `make demo`, which says it
// is building before the (slow, silent) build and then runs the demo.
func TestMakeDemo(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(readme), "```sh\n")
	if first, _, _ := strings.Cut(block, "\n"); !strings.HasPrefix(first, "make demo ") {
		t.Fatalf("README's first command is %q, want make demo", first)
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make here")
	}
	cmd := exec.Command(makeBin, "-n", "demo")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n demo: %v: %s", err, out)
	}
	steps := []string{"building shoal (the first build downloads and compiles dependencies, a few minutes)", "build -o bin/shoal ./cmd/shoal", "bin/shoal demo"}
	rest := string(out)
	for _, s := range steps {
		i := strings.Index(rest, s)
		if i < 0 {
			t.Fatalf("make -n demo does not run %q after the steps before it:\n%s", s, out)
		}
		rest = rest[i+len(s):]
	}
}

// TestStopIgnoresForeignPID: a pid file left by a daemon that died and
// now naming another program is removed, and that program is not
// signalled.
func TestStopIgnoresForeignPID(t *testing.T) {
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Skipf("no sleep command: %v", err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	home := t.TempDir()
	pidFile := filepath.Join(home, PIDFile)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := stopDaemon(t.Context(), home, time.Second)
	if err == nil || !strings.Contains(err.Error(), "not a shoal daemon") {
		t.Fatalf("stop with a foreign pid: %v, want refused as not a shoal daemon", err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("stale pid file kept: %v", err)
	}
	if !running(other.Process.Pid) {
		t.Errorf("the foreign process %d was signalled", other.Process.Pid)
	}
}

// TestStopChildWaitsForExit: a daemon that did not come up is stopped and
// gone when stopChild returns — by SIGTERM, or by SIGKILL when it ignores
// SIGTERM.
func TestStopChildWaitsForExit(t *testing.T) {
	defer func(g time.Duration) { stopChildGrace = g }(stopChildGrace)
	stopChildGrace = 200 * time.Millisecond
	for _, script := range []string{"exec sleep 60", `trap "" TERM; while :; do sleep 0.1; done`} {
		child := exec.Command("sh", "-c", script)
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = child.Wait(); close(exited) }()
		stopChild(child.Process, exited)
		select {
		case <-exited:
		default:
			t.Fatalf("%q still running after stopChild", script)
		}
		// Already gone: stopChild returns without signalling.
		stopChild(child.Process, exited)
	}
}
