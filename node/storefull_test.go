package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/internal/storetest"
	"github.com/shoalnet/shoal/protocol"
)

// startFullDiskNode starts a node on a disk store that takes room blocks.
func startFullDiskNode(t *testing.T, room int64) (*Node, *storetest.Full) {
	t.Helper()
	bcfg := blockstore.DefaultConfig(t.TempDir())
	bcfg.Links = content.Links
	disk, err := blockstore.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	fs := storetest.NewFull(disk, bcfg.Dir, room)
	return startNodeWithParts(t, testConfig(), Parts{Store: fs}), fs
}

// TestFetchOntoFullDiskFails: the disk fills up two blocks into a fetch.
// The transfer must end with the store's ENOSPC (not retry forever), each
// block having been offered to the store at most once; the store holds
// only whole blocks; and the seeder, which did nothing wrong, is not
// banned and still serves others.
func TestFetchOntoFullDiskFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := startNode(t, testConfig())
	data := randomBytes(6<<20+123, 11)
	res, err := seed.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leech, store := startFullDiskNode(t, 2)
	if err := leech.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	tr, err := leech.Fetch(ctx, res.CID, "api")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatalf("fetch onto a full disk still running after %d refused Puts: %+v", store.Failed(), tr.Info())
	}
	err = tr.Err()
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, protocol.ErrStore) {
		t.Fatalf("transfer error = %v, want one wrapping protocol.ErrStore and ENOSPC", err)
	}
	info := tr.Info()
	if info.State != TransferFailed || !strings.Contains(info.Error, "no space left on device") {
		t.Errorf("transfer info: state %q, error %q", info.State, info.Error)
	}
	if f := store.Failed(); f < 1 || f > int64(res.Blocks) {
		t.Errorf("%d Puts refused for a %d-block DAG: the fetch kept retrying", f, res.Blocks)
	}

	// Only whole blocks are stored, and no more than the disk took.
	rep, err := leech.Store().Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 0 || len(rep.Vanished) != 0 || rep.Checked > 2 {
		t.Errorf("store after the failed fetch: %d checked, corrupt %v, vanished %v", rep.Checked, rep.Corrupt, rep.Vanished)
	}
	if rep.Checked == 0 {
		t.Errorf("no block stored: the test never reached a full disk mid-fetch")
	}

	// The seeder is not blamed: not banned, and it still serves a node
	// whose disk has room.
	if leech.client.Scores().Banned(seed.host.ID(), time.Now()) {
		t.Errorf("seeder banned for the leecher's full disk")
	}
	other := startNode(t, testConfig())
	if err := other.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	tr2, err := other.Fetch(ctx, res.CID, "api")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Err(); err != nil {
		t.Fatalf("fetch onto a disk with room: %v", err)
	}
}

// TestFetchOntoRealFullDisk is TestFetchOntoFullDiskFails on a real file
// system: the leecher's home is a 3 MiB tmpfs and the file 6 MiB. It
// needs permission to mount tmpfs and skips without it.
func TestFetchOntoRealFullDisk(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s); needs root or CAP_SYS_ADMIN", err, strings.TrimSpace(string(out)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := startNode(t, testConfig())
	res, err := seed.AddFile(ctx, bytes.NewReader(randomBytes(6<<20+5, 12)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Home = mnt
	leech, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = leech.Close()
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	if err := leech.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leech.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	tr, err := leech.Fetch(ctx, res.CID, "api")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.Done():
	case <-ctx.Done():
		t.Fatalf("fetch onto a full tmpfs still running: %+v", tr.Info())
	}
	if err := tr.Err(); !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrStore) {
		t.Fatalf("transfer error = %v, want ErrStore wrapping ENOSPC", err)
	}
	rep, err := leech.Store().Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 0 || len(rep.Vanished) != 0 || rep.Checked == 0 {
		t.Errorf("store after the failed fetch: %d checked, corrupt %v, vanished %v", rep.Checked, rep.Corrupt, rep.Vanished)
	}
	// No temporary block file is left to fill the disk further. The
	// transfer ends at the first ENOSPC while other blocks' writes may
	// still be running (each removes its temporary file when it fails), so
	// look once the node is closed and every write has returned — under
	// load one was seen mid-write here.
	if err := leech.Close(); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), "tmp") {
			t.Errorf("left behind %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
