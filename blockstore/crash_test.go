package blockstore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

const (
	crashEnvDir  = "SHOAL_BLOCKSTORE_CRASH_DIR"
	crashEnvSeed = "SHOAL_BLOCKSTORE_CRASH_SEED"
	crashEnvSync = "SHOAL_BLOCKSTORE_CRASH_SYNC"
	crashCap     = 16 << 20
)

// TestHelperProcess is the child of TestCrashRecovery: it opens the store
// and writes, deletes, pins and unpins blocks until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	s, err := Open(Config{Dir: dir, CapacityBytes: crashCap, Sync: os.Getenv(crashEnvSync) == "1", Links: testLinks})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(3)
	}
	fmt.Println("ready")
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 99))
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	// Some blocks are references into a seed file beside the store,
	// recorded as a node records them: written, synced, then PutRefs.
	seedPath := dir + ".seed"
	sf, err := os.OpenFile(seedPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: seed file:", err)
		os.Exit(3)
	}
	var recent []block
	for i := 0; ; i++ {
		n := 1 + r.IntN(16<<10)
		if r.IntN(3) == 0 {
			n = 1 << 20
		}
		data := make([]byte, n)
		src.Read(data)
		b := rawBlock(data)
		if i%7 == 3 && len(recent) > 1 {
			b = nodeBlock(recent[len(recent)-1].c, recent[len(recent)-2].c)
		}
		if i%4 == 1 && b.c.Prefix().Codec == cid.Raw {
			fi, _ := sf.Stat()
			off := fi.Size()
			if _, err := sf.WriteAt(b.data, off); err != nil {
				fmt.Fprintln(os.Stderr, "child: seed write:", err)
				os.Exit(3)
			}
			if err := sf.Sync(); err != nil {
				fmt.Fprintln(os.Stderr, "child: seed sync:", err)
				os.Exit(3)
			}
			if err := s.PutRefs(ctx, []Ref{{C: b.c, Offset: off, Size: int64(len(b.data)), Path: seedPath}}); err != nil {
				fmt.Fprintln(os.Stderr, "child: putrefs:", err)
			}
		} else if err := s.Put(ctx, b.c, b.data); err != nil {
			fmt.Fprintln(os.Stderr, "child: put:", err)
		}
		recent = append(recent, b)
		switch {
		case i%5 == 0:
			_ = s.Pin(ctx, recent[r.IntN(len(recent))].c)
		case i%5 == 1:
			if pins, _ := s.Pins(ctx); len(pins) > 2 {
				_ = s.Unpin(ctx, pins[r.IntN(len(pins))])
			}
		case i%5 == 2:
			_ = s.Delete(ctx, recent[r.IntN(len(recent))].c)
		}
	}
}

// TestCrashRecovery kills a writing child with SIGKILL at random moments
// and checks after each kill that every file named as a block holds
// exactly that block, that Open removes the temporary files and that the
// store verifies clean.
func TestCrashRecovery(t *testing.T) {
	rounds, budget := 30, 20*time.Second
	if testing.Short() {
		rounds = 5
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	tmpSeen, refs := 0, 0
	round := 0
	for ; round < rounds && time.Since(start) < budget; round++ {
		runAndKill(t, dir, round, time.Duration(r.IntN(400))*time.Millisecond)
		tmpSeen += checkBlockFiles(t, dir)
		refs = checkReopen(t, dir)
	}
	t.Logf("%d rounds in %v; %d temporary files left by kills; %d references at the end", round, time.Since(start).Round(time.Millisecond), tmpSeen, refs)
	if refs == 0 {
		t.Fatal("no reference survived the kills: the test did not exercise them")
	}
	if round < 5 {
		t.Fatalf("only %d rounds ran", round)
	}
}

func runAndKill(t *testing.T, dir string, round int, after time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	sync := "0"
	if round%3 == 2 {
		sync = "1"
	}
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvSeed+"="+strconv.Itoa(round), crashEnvSync+"="+sync)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("round %d: child did not start: %q %v; stderr:\n%s", round, line, err, stderr.String())
	}
	time.Sleep(after)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("round %d: child ended by itself (%v); stderr:\n%s", round, err, stderr.String())
	}
}

// checkBlockFiles hashes every block file directly, without the store's
// code, and returns how many temporary files there are.
func checkBlockFiles(t *testing.T, dir string) int {
	t.Helper()
	tmps := 0
	err := filepath.WalkDir(filepath.Join(dir, blocksDirName), func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			tmps++
			return nil
		}
		key, err := keyEncoding.DecodeString(de.Name())
		if err != nil {
			return fmt.Errorf("%s: not a block name", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := checkHash(key, data); err != nil {
			return fmt.Errorf("%s (%d bytes): %v", p, len(data), err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after kill: %v", err)
	}
	return tmps
}

// checkReopen opens the store after a kill and verifies it: no corrupt
// or vanished block, no reference naming a range that does not hold its
// block. It returns the number of references.
func checkReopen(t *testing.T, dir string) int {
	t.Helper()
	s, err := Open(Config{Dir: dir, CapacityBytes: crashCap, Links: testLinks, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	if n := checkBlockFiles(t, dir); n != 0 {
		t.Fatalf("%d temporary files left after Open", n)
	}
	rep, err := s.Verify(context.Background())
	if err != nil || len(rep.Corrupt) != 0 || len(rep.Vanished) != 0 || len(rep.RefsGone) != 0 {
		t.Fatalf("Verify after kill: corrupt %v vanished %v references gone %v err %v", rep.Corrupt, rep.Vanished, rep.RefsGone, err)
	}
	st := s.Stat()
	if st.Bytes > crashCap || st.Blocks != rep.Checked {
		t.Fatalf("Stat after kill %+v, verified %d blocks", st, rep.Checked)
	}
	checkInvariants(t, s)
	return st.Refs
}
