package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/internal/storetest"
	"github.com/shoalnet/shoal/node"
)

// TestCLIFetchOntoFullDisk: the daemon's disk fills up during `shoal
// fetch`. The CLI must end with a non-zero exit and the store's error on
// stderr, leave nothing under the target's name, and the API must report
// the failed transfer with that error.
func TestCLIFetchOntoFullDisk(t *testing.T) {
	seed := startTestDaemon(t, "")
	bcfg := blockstore.DefaultConfig("")
	bcfg.Links = content.Links
	store := storetest.NewFull(blockstore.NewMemory(bcfg), "", 2)
	leech := startTestDaemonWith(t, "", node.Parts{Store: store})
	mustShoal(t, "connect", "--api", leech.url, seed.n.Info().Addresses[0])

	res, err := seed.n.AddFile(context.Background(), bytes.NewReader(randomBytes(5<<20, 21)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "out.bin")
	code, _, stderr := shoal(t, "fetch", "--api", leech.url, res.CID.String(), "-o", target)
	if code == 0 || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("shoal fetch onto a full disk: exit %d, stderr %q; want non-zero and the disk's error", code, stderr)
	}
	t.Logf("shoal fetch: exit %d, stderr %s", code, stderr)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind %v", ents)
	}
	c, err := api.NewClient(leech.url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.Transfers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != 1 || tr[0].State != api.TransferFailed || !strings.Contains(tr[0].Error, "no space left on device") {
		t.Errorf("GET /api/v1/transfers = %+v, want one failed transfer with the disk's error", tr)
	}
}
