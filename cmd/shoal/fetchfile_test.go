//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalnet/shoal/api"
)

// procIO is a process's /proc/PID/io: rchar counts every byte its read
// calls returned (sockets included), wchar every byte it wrote.
type procIO struct{ rchar, wchar int64 }

// cliIO runs a CLI command against d and reads the process's I/O counts
// after it exited and before it is reaped (waitid with WNOWAIT), so they
// are its totals.
func (d *daemon) cliIO(args ...string) (string, procIO, error) {
	d.t.Helper()
	cmd := exec.Command(binPath, append(args, "--home", d.home)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		d.t.Fatalf("waiting for shoal %s: %v", strings.Join(args, " "), err)
	}
	pio := readProcIO(d.t, cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		return stdout.String(), pio, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return stdout.String(), pio, nil
}

// readProcIO is process pid's I/O counts so far.
func readProcIO(t testing.TB, pid int) procIO {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatalf("reading the I/O counts of process %d: %v", pid, err)
	}
	var pio procIO
	for line := range strings.SplitSeq(string(st), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "rchar":
			pio.rchar = n
		case "wchar":
			pio.wchar = n
		}
	}
	return pio
}

// TestFetchDaemonWritesFile: `fetch -o` against the home's daemon leaves
// the writing to the daemon — the CLI process reads and writes well under
// a tenth of the file (its reads include every byte it got over HTTP) —
// and the file holds the shared bytes. The same fetch with --api (a
// daemon that may be remote) streams: the CLI reads and writes the whole
// file. -o - streams to stdout.
func TestFetchDaemonWritesFile(t *testing.T) {
	shoalBinary(t)
	dir := t.TempDir()
	seeder := startDaemon(t, filepath.Join(dir, "seeder"))
	leech := startDaemon(t, filepath.Join(dir, "leech"), seeder.addr)
	share := func(size int, seed uint64) (string, []byte) {
		data := randomBytes(size, seed)
		src := filepath.Join(dir, fmt.Sprintf("src-%d.bin", seed))
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return lastLine(seeder.cli("share", src)), data
	}
	const size = 24<<20 + 4321
	root, data := share(size, 11)
	out := filepath.Join(dir, "got.bin")
	if _, pio, err := leech.cliIO("fetch", root, "-o", out); err != nil {
		t.Fatal(err)
	} else if pio.rchar > size/10 || pio.wchar > size/10 {
		t.Fatalf("the CLI read %d and wrote %d bytes fetching %d: it handled the content itself", pio.rchar, pio.wchar, size)
	} else {
		t.Logf("daemon-written fetch of %d bytes: the CLI read %d and wrote %d bytes", size, pio.rchar, pio.wchar)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s holds %d bytes (%v), want the %d shared", out, len(got), err, size)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%s: %v, mode %v; want 0644 as a streamed fetch makes", out, err, fi.Mode())
	}
	if parts, _ := filepath.Glob(filepath.Join(dir, ".got.bin.*")); len(parts) != 0 {
		t.Fatalf("temporary files left beside the target: %v", parts)
	}

	// --api: the fallback streams (a remote daemon cannot take a descriptor).
	api, err := os.ReadFile(filepath.Join(leech.home, APIFile))
	if err != nil {
		t.Fatal(err)
	}
	root2, data2 := share(size, 12)
	out2 := filepath.Join(dir, "streamed.bin")
	if _, pio, err := leech.cliIO("fetch", root2, "-o", out2, "--api", strings.TrimSpace(string(api))); err != nil {
		t.Fatal(err)
	} else if pio.rchar < size || pio.wchar < size {
		t.Fatalf("fetch --api read %d and wrote %d bytes of %d: want it to stream", pio.rchar, pio.wchar, size)
	}
	if got, err := os.ReadFile(out2); err != nil || !bytes.Equal(got, data2) {
		t.Fatalf("%s holds %d bytes (%v), want the %d shared", out2, len(got), err, size)
	}

	// -o - streams to stdout.
	root3, data3 := share(3<<20+5, 13)
	if got, err := leech.cliErr("fetch", root3, "-o", "-"); err != nil || got != string(data3) {
		t.Fatalf("fetch -o - printed %d bytes (%v), want the %d shared", len(got), err, len(data3))
	}
}

// TestFetchDaemonOtherUser: the daemon runs as another user (nobody) who
// may not write into the target's directory; the CLI (root here) can, so
// the fetch succeeds — the daemon wrote through the descriptor the CLI
// opened — and the file belongs to the CLI's user.
func TestFetchDaemonOtherUser(t *testing.T) {
	shoalBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the daemon as another user")
	}
	const nobody = 65534
	// Everything the daemon needs is under a directory nobody may enter.
	base, err := os.MkdirTemp("", "shoal-otheruser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "shoal")
	b, err := os.ReadFile(shoalBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	seeder := startDaemon(t, filepath.Join(t.TempDir(), "seeder"))
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	leech := startDaemonAs(t, bin, home, &syscall.Credential{Uid: nobody, Gid: nobody}, seeder.addr)

	data := randomBytes(6<<20+99, 21)
	src := filepath.Join(t.TempDir(), "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	root := lastLine(seeder.cli("share", src))
	target := filepath.Join(t.TempDir(), "private") // 0700, root's
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(target, "got.bin")
	if _, pio, err := leech.cliIO("fetch", root, "-o", out); err != nil {
		t.Fatalf("fetch into a directory only the CLI's user may write: %v\ndaemon log:\n%s", err, leech.log)
	} else if pio.wchar > int64(len(data))/10 {
		t.Fatalf("the CLI wrote %d bytes of %d itself", pio.wchar, len(data))
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s holds %d bytes (%v), want the %d shared", out, len(got), err, len(data))
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Fatalf("%s belongs to uid %d, want the CLI's user (0)", out, st.Uid)
	}
}

// TestCrashCLIDuringFetch: kill -9 the CLI while the daemon writes its
// file: nothing appears under the final name, the store verifies clean,
// and fetching again completes without fetching the stored blocks again.
func TestCrashCLIDuringFetch(t *testing.T) {
	shoalBinary(t)
	dir := t.TempDir()
	// The seeder's uplink is limited (32 MiB at 16 MiB/s, about 2 s) so
	// that the kill at a quarter lands mid-fetch: unthrottled on loopback
	// the fetch could finish, rename and still be running when killed.
	seeder := startDaemonWith(t, filepath.Join(dir, "seeder"), func(c *exec.Cmd) { c.Args = append(c.Args, "--upload-limit", "16MiB/s") })
	d := startDaemon(t, filepath.Join(dir, "victim"), seeder.addr)
	data := randomBytes(32<<20, 31)
	src := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	root := lastLine(seeder.cli("share", src))
	served := servedBytes(t, seeder)
	out := filepath.Join(dir, "got.bin")
	cmd, _ := d.startCLI("fetch", root, "-o", out)
	var done uint64
	waitUntil := time.Now().Add(time.Minute)
	for done < uint64(len(data))/4 && time.Now().Before(waitUntil) {
		if ts, err := d.transfers(); err == nil {
			for _, tr := range ts {
				if tr.CID == root {
					done = tr.BytesDone
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	if err := cmd.Wait(); err == nil {
		t.Skipf("the fetch finished before the kill (%d of %d bytes seen): machine too fast", done, len(data))
	}
	if got, err := os.ReadFile(out); err == nil {
		if !bytes.Equal(got, data) {
			t.Fatalf("a CLI killed mid-fetch left %d wrong bytes under its final name %s", len(got), out)
		}
		t.Skipf("the fetch was whole and in place before the kill (%d of %d bytes seen at the kill): machine too fast", done, len(data))
	}
	checkRepo(t, d, "after the CLI's kill")
	var res fetchOutput
	if err := json.Unmarshal([]byte(d.cli("fetch", root, "-o", out, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the fetch after the kill wrote %d bytes (%v), want the %d shared", len(got), err, len(data))
	}
	// The daemon's transfer outlives the CLI, so the second fetch may
	// join it: what the seeder sent over both is the measure.
	sent := servedBytes(t, seeder) - served
	if limit := float64(len(data) + 4<<20); sent > limit {
		t.Fatalf("the seeder sent %.0f bytes for a %d-byte file over both fetches: stored blocks crossed the network again", sent, len(data))
	}
	t.Logf("%d of %d bytes stored at the kill; the seeder sent %.0f bytes over both fetches", done, len(data), sent)
	checkRepo(t, d, "after the second fetch")
}

// startDaemonAs is startDaemon with another binary and user.
func startDaemonAs(t *testing.T, bin, home string, cred *syscall.Credential, bootstrap ...string) *daemon {
	t.Helper()
	return startDaemonWith(t, home, func(cmd *exec.Cmd) {
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = filepath.Dir(bin)
	}, bootstrap...)
}

// servedBytes is the daemon's shoal_served_bytes_total: block bytes it
// sent to peers.
func servedBytes(t *testing.T, d *daemon) float64 {
	t.Helper()
	return daemonMetric(t, d, "shoal_served_bytes_total")
}

// slowHandoff is the CLI's API transport with every request held until
// the leecher's transfer of root has received at least min bytes (or 20
// s have passed); only the request that starts a transfer goes at once.
// A CLI that starts the transfer before it hands over the file then
// hands it over late: the leaves received meanwhile reach the store
// before the file does.
type slowHandoff struct {
	next  http.RoundTripper
	leech *daemon
	root  string
	min   uint64
	held  atomic.Int32 // requests held until the transfer got min
}

func (s *slowHandoff) RoundTrip(r *http.Request) (*http.Response, error) {
	if !(r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/api/v1/fetch")) {
		for deadline, waited := time.Now().Add(20*time.Second), false; s.received() < s.min && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if !waited {
				s.held.Add(1)
				waited = true
			}
		}
	}
	return s.next.RoundTrip(r)
}

func (s *slowHandoff) received() uint64 {
	ts, _ := s.leech.transfers()
	var n uint64
	for _, t := range ts {
		if t.CID == s.root {
			n = max(n, t.BytesReceived)
		}
	}
	return n
}

// TestFetchIntoFileWritesEachLeafOnce: `fetch -o PATH` against the
// home's daemon, with the CLI's API requests held until the leecher has
// received a third of the file, still writes each leaf once: the daemon
// writes (write(2) and pwrite(2), /proc/PID/io wchar) the file's bytes
// and little more, so no leaf went to the store first and was copied
// into the file later. The store keeps references, not copies: the
// leecher's blocks take no room beyond the file's root.
func TestFetchIntoFileWritesEachLeafOnce(t *testing.T) {
	shoalBinary(t)
	dir := t.TempDir()
	seeder := startDaemon(t, filepath.Join(dir, "seeder"))
	leech := startDaemon(t, filepath.Join(dir, "leech"), seeder.addr)
	const size = 24 << 20
	data := randomBytes(size, 21)
	src := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	root := lastLine(seeder.cli("share", src))
	apiAddr, err := os.ReadFile(filepath.Join(leech.home, APIFile))
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowHandoff{next: http.DefaultTransport, leech: leech, root: root, min: size / 3}
	c, err := api.NewClient(strings.TrimSpace(string(apiAddr)), "", &http.Client{Transport: slow})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "got.bin")
	o := &fetchOptions{out: out, timeout: time.Minute, socket: filepath.Join(leech.home, SocketFile)}
	before := readProcIO(t, leech.cmd.Process.Pid)
	res, err := fetch(context.Background(), c, root, o, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	wrote := readProcIO(t, leech.cmd.Process.Pid).wchar - before.wchar
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s holds %d bytes (%v), want the %d shared", out, len(got), err, size)
	}
	t.Logf("fetch of %d bytes (%d received): the leecher daemon wrote %d bytes (%.3f per byte); %d API request waits for the transfer", size, res.BytesReceived, wrote, float64(wrote)/size, slow.held.Load())
	if wrote > size+size/16 {
		t.Fatalf("the leecher daemon wrote %d bytes fetching %d into a file: %d more than the file, so leaves were written to its store before the file was handed over", wrote, size, wrote-size)
	}
	stored := dirBytes(t, filepath.Join(leech.home, "blocks"))
	if stored > size/16 {
		t.Fatalf("the leecher's store holds %d bytes of block files after fetching %d into a file: copies, not references", stored, size)
	}
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		fi, err := e.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
