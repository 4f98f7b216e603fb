package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
)

// The crash tests kill -9 a daemon in the middle of `share` and of `fetch`
// at random moments, restart it on the same home and check what a crash
// may never leave behind: a corrupt block, an inconsistent pin, a partial
// file under a fetch's final name. Fetching again resumes: blocks stored
// before the crash do not cross the network again.

// repoVerify runs `shoal repo verify --json` in-process against the daemon
// of home. It builds its own root command, so it works whether or not
// main.go registers `repo` yet.
func repoVerify(t *testing.T, home string) (api.VerifyReport, int, string) {
	t.Helper()
	g := &globalFlags{}
	root := &cobra.Command{Use: "shoal", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().BoolVar(&g.json, "json", false, "")
	addHomeFlag(root)
	root.AddCommand(newRepoCmd(g))
	var stdout, stderr bytes.Buffer
	root.SetArgs([]string{"repo", "verify", "--json", "--home", home})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := 0
	if err := root.ExecuteContext(ctx); err != nil {
		code = 1
		fmt.Fprintln(&stderr, "shoal:", err)
	}
	var rep api.VerifyReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("repo verify --json printed %q (stderr %q): %v", stdout.String(), stderr.String(), err)
	}
	return rep, code, stderr.String()
}

// kill9 kills the daemon process with SIGKILL and reaps it.
func (d *daemon) kill9() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
}

// transfers lists the daemon's transfers through its API.
func (d *daemon) transfers() ([]api.Transfer, error) {
	b, err := os.ReadFile(filepath.Join(d.home, APIFile))
	if err != nil {
		return nil, err
	}
	c, err := api.NewClient(string(b), "", nil)
	if err != nil {
		return nil, err
	}
	return c.Transfers(context.Background())
}

// startCLI starts a CLI command against d without waiting for it.
func (d *daemon) startCLI(args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(binPath, append(args, "--home", d.home)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	return cmd, &out
}

// checkRepo verifies a restarted daemon's store: nothing corrupt or
// vanished, every pin complete.
func checkRepo(t *testing.T, d *daemon, round string) api.VerifyReport {
	t.Helper()
	rep, code, stderr := repoVerify(t, d.home)
	if code != 0 || rep.Damaged() || len(rep.Incomplete) != 0 {
		t.Fatalf("%s: repo verify after kill -9 = %+v (exit %d, %s)", round, rep, code, stderr)
	}
	return rep
}

func crashRounds() int {
	if os.Getenv("SHOAL_CRASH_ROUNDS") != "" {
		var n int
		fmt.Sscan(os.Getenv("SHOAL_CRASH_ROUNDS"), &n)
		return n
	}
	return 6
}

// TestCrashDuringShare: kill -9 the daemon while `share` streams a large
// file into it, at random moments; after each restart the store verifies
// clean and every pin is complete and catalogued; a share that finished
// before the kill is listed with its size.
func TestCrashDuringShare(t *testing.T) {
	shoalBinary(t)
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	data := randomBytes(48<<20, seed)
	src := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "victim")
	d := startDaemon(t, home)
	// Calibrate: how long one whole share takes here; kills fall within it.
	start := time.Now()
	d.cli("share", src)
	span := time.Since(start)
	d.cli("unpin", lastLine(d.cli("cid", src)))
	d.cli("gc")
	t.Logf("one share of %d MiB takes %v", len(data)>>20, span)
	deadline := time.Now().Add(25 * time.Second)
	completed := 0
	for round := 0; round < crashRounds() && time.Now().Before(deadline); round++ {
		name := fmt.Sprintf("share round %d", round)
		cmd, out := d.startCLI("share", src)
		time.Sleep(time.Duration(rng.Int64N(int64(span))))
		d.kill9()
		shareErr := cmd.Wait()
		d = startDaemon(t, home)
		rep := checkRepo(t, d, name)
		var roots []lsEntry
		if err := json.Unmarshal([]byte(d.cli("ls", "--json")), &roots); err != nil {
			t.Fatal(err)
		}
		if len(roots) != rep.Pins {
			t.Fatalf("%s: ls lists %d roots, the store holds %d pins: %+v", name, len(roots), rep.Pins, roots)
		}
		for _, r := range roots {
			if !r.Pinned || r.Size != uint64(len(data)) {
				t.Fatalf("%s: root %+v, want pinned with size %d", name, r, len(data))
			}
		}
		if shareErr == nil {
			completed++
			if len(roots) != 1 {
				t.Fatalf("%s: share finished (%s) but ls lists %+v", name, lastLine(out.String()), roots)
			}
		}
		t.Logf("%s: share exited with %v; %d blocks verified, %d pins", name, shareErr, rep.Checked, rep.Pins)
		// Start the next round from an empty store, so its share writes
		// every block again.
		for _, r := range roots {
			d.cli("unpin", r.CID)
		}
		d.cli("gc")
	}
	t.Logf("%d of the shares finished before the kill", completed)
}

// TestCrashDuringFetch: kill -9 the fetching daemon at random moments
// during `fetch`; after each restart the store verifies clean and nothing
// exists under the fetch's final name unless the fetch finished (then it
// holds exactly the shared bytes). A last fetch, killed when about half
// has arrived, resumes: its second try receives fewer bytes than the
// file holds.
func TestCrashDuringFetch(t *testing.T) {
	shoalBinary(t)
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	seeder := startDaemon(t, filepath.Join(dir, "seeder"))
	home := filepath.Join(dir, "victim")
	d := startDaemon(t, home, seeder.addr)
	share := func(size int, s uint64) (string, []byte) {
		data := randomBytes(size, s)
		src := filepath.Join(dir, fmt.Sprintf("src-%d.bin", s))
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return lastLine(seeder.cli("share", src)), data
	}
	// Calibrate: how long one whole fetch takes here; kills fall within it.
	root, _ := share(24<<20, seed-1)
	start := time.Now()
	d.cli("fetch", root, "-o", filepath.Join(dir, "calibrate.bin"))
	span := time.Since(start)
	t.Logf("one fetch of 24 MiB takes %v", span)
	deadline := time.Now().Add(25 * time.Second)
	for round := 0; round < crashRounds() && time.Now().Before(deadline); round++ {
		name := fmt.Sprintf("fetch round %d", round)
		root, data := share(24<<20, seed+uint64(round))
		out := filepath.Join(dir, fmt.Sprintf("out-%d.bin", round))
		cmd, cliOut := d.startCLI("fetch", root, "-o", out)
		time.Sleep(time.Duration(rng.Int64N(int64(span))))
		d.kill9()
		fetchErr := cmd.Wait()
		got, err := os.ReadFile(out)
		switch {
		case fetchErr == nil && (err != nil || !bytes.Equal(got, data)):
			t.Fatalf("%s: fetch succeeded (%s) but %s holds %d bytes (%v), want the %d shared", name, cliOut, out, len(got), err, len(data))
		case fetchErr != nil && err == nil:
			t.Fatalf("%s: fetch failed (%v: %s) yet left %d bytes under its final name %s", name, fetchErr, cliOut, len(got), out)
		}
		if fetchErr != nil && !strings.Contains(cliOut.String(), "shoal:") {
			t.Fatalf("%s: failed fetch printed no error: %q", name, cliOut)
		}
		d = startDaemon(t, home, seeder.addr)
		rep := checkRepo(t, d, name)
		t.Logf("%s: fetch exited with %v; %d blocks verified", name, fetchErr, rep.Checked)
	}

	var data []byte
	// Resume: kill when a third to two thirds has arrived, fetch again.
	root, data = share(32<<20, seed^0xabc)
	out := filepath.Join(dir, "resumed.bin")
	cmd, _ := d.startCLI("fetch", root, "-o", out)
	var done uint64
	waitUntil := time.Now().Add(time.Minute)
	for done < uint64(len(data))/3 && time.Now().Before(waitUntil) {
		if ts, err := d.transfers(); err == nil {
			for _, tr := range ts {
				if tr.CID == root {
					done = tr.BytesDone
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.kill9()
	if err := cmd.Wait(); err == nil {
		t.Skipf("the fetch finished before the kill (%d of %d bytes seen): machine too fast to test resume", done, len(data))
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("interrupted fetch left a file under its final name %s", out)
	}
	d = startDaemon(t, home, seeder.addr)
	checkRepo(t, d, "resume")
	var res fetchOutput
	if err := json.Unmarshal([]byte(d.cli("fetch", root, "-o", out, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed fetch wrote %d bytes (%v), want the %d shared", len(got), err, len(data))
	}
	t.Logf("resume: %d of %d bytes stored at the kill; the second fetch received %d bytes", done, len(data), res.BytesReceived)
	if res.BytesReceived >= uint64(len(data)) {
		t.Fatalf("second fetch received %d bytes of %d: blocks stored before the crash were fetched again", res.BytesReceived, len(data))
	}
	// The interrupted fetch's part file (the seed of what it had written)
	// is gone once the resumed fetch has copied it.
	if parts, _ := filepath.Glob(filepath.Join(dir, ".resumed.bin.*")); len(parts) != 0 {
		t.Fatalf("part files left beside the target after the resumed fetch: %v", parts)
	}
	if limit := uint64(len(data)) - done + 4<<20; res.BytesReceived > limit {
		t.Fatalf("second fetch received %d bytes; %d were already stored, so at most %d should cross the network", res.BytesReceived, done, limit)
	}
	if rep := checkRepo(t, d, "after resume"); rep.Checked == 0 {
		t.Fatal("repo verify checked no blocks after a whole fetch")
	}
}
