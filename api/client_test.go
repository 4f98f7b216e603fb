package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/api"
)

// TestClientNode: id, stat, peers and connect against a real node, and
// their answers match the node's own view.
func TestClientNode(t *testing.T) {
	ctx := context.Background()
	c, n := newClient(t)
	other := startNode(t)
	id, err := c.ID(ctx)
	if err != nil || id.ID != n.Info().ID || id.API != c.BaseURL() || len(id.Addresses) == 0 {
		t.Fatalf("ID = %+v, %v; want the node's ID %s and API %s", id, err, n.Info().ID, c.BaseURL())
	}
	addr := other.Info().Addresses[0]
	res, err := c.Connect(ctx, addr)
	if err != nil || res.Addr != addr {
		t.Fatalf("Connect(%s) = %+v, %v", addr, res, err)
	}
	peers, err := c.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].ID != other.Info().ID {
		t.Fatalf("Peers = %+v, %v; want the one connected peer %s", peers, err, other.Info().ID)
	}
	st, err := c.Stat(ctx)
	if err != nil || st.ID != id.ID || st.Peers != 1 || st.Roots != 0 {
		t.Fatalf("Stat = %+v, %v; want 1 peer and no roots", st, err)
	}
}

// TestClientContent: add a file and a tree, then ls, stat, cat (whole and
// from an offset), get (a tar), pin, unpin, gc and repo verify.
func TestClientContent(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t)
	data := randomBytes(t, 3<<20+17)
	file, err := c.Add(ctx, bytes.NewReader(data), api.AddOptions{Name: "a.bin"})
	if err != nil || file.Name != "a.bin" || file.Size != uint64(len(data)) || file.Blocks < 4 {
		t.Fatalf("Add(file) = %+v, %v", file, err)
	}
	tree, err := c.Add(ctx, bytes.NewReader(tarOf(t, map[string]string{"x.txt": "hello", "y.txt": "world!"})), api.AddOptions{Name: "d", Tar: true})
	if err != nil || tree.Name != "d" {
		t.Fatalf("Add(tar) = %+v, %v", tree, err)
	}
	roots, err := c.Ls(ctx)
	if err != nil || len(roots) != 2 || !slices.ContainsFunc(roots, func(r api.Root) bool { return r.CID == file.CID && r.Name == "a.bin" && r.Pinned }) {
		t.Fatalf("Ls = %+v, %v; want both roots, %s pinned as a.bin", roots, err, file.CID)
	}
	st, err := c.StatPath(ctx, tree.CID+"/y.txt")
	if err != nil || st.Type != api.TypeFile || st.Size != 6 || st.Name != "y.txt" || st.Root {
		t.Fatalf("StatPath(%s/y.txt) = %+v, %v", tree.CID, st, err)
	}
	if st, err = c.StatPath(ctx, tree.CID); err != nil || st.Type != api.TypeDirectory || st.Entries != 2 || !st.Root || !st.Pinned {
		t.Fatalf("StatPath(%s) = %+v, %v", tree.CID, st, err)
	}
	checkCat(t, c, file.CID, data)
	checkGet(t, c, tree.CID, map[string]string{"x.txt": "hello", "y.txt": "world!"})

	if res, err := c.Unpin(ctx, file.CID); err != nil || res.CID != file.CID || res.Pinned {
		t.Fatalf("Unpin = %+v, %v", res, err)
	}
	gc, err := c.GC(ctx)
	if err != nil || gc.Removed != file.Blocks || gc.Bytes < int64(len(data)) {
		t.Fatalf("GC = %+v, %v; want the unpinned file's %d blocks removed", gc, err, file.Blocks)
	}
	if res, err := c.Pin(ctx, tree.CID); err != nil || res.CID != tree.CID || !res.Pinned {
		t.Fatalf("Pin = %+v, %v", res, err)
	}
	rep, err := c.RepoVerify(ctx)
	if err != nil || rep.Checked == 0 || rep.Damaged() || rep.Pins != 1 || len(rep.Incomplete) != 0 {
		t.Fatalf("RepoVerify = %+v, %v; want the tree's blocks checked, one whole pin, no damage", rep, err)
	}
}

func checkCat(t *testing.T, c *api.Client, cid string, data []byte) {
	t.Helper()
	for _, off := range []int64{0, 1<<20 + 5} {
		f, err := c.Cat(context.Background(), cid, off)
		if err != nil {
			t.Fatalf("Cat(%s, %d): %v", cid, off, err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, data[off:]) || f.Size != int64(len(data)) {
			t.Fatalf("Cat(%s, %d): %d bytes (size %d), %v; want the %d bytes from %d", cid, off, len(got), f.Size, err, len(data)-int(off), off)
		}
	}
}

func checkGet(t *testing.T, c *api.Client, cid string, want map[string]string) {
	t.Helper()
	g, err := c.Get(context.Background(), cid)
	if err != nil || g.Type != api.TypeDirectory {
		t.Fatalf("Get(%s) = %+v, %v", cid, g, err)
	}
	defer g.Close()
	got := map[string]string{}
	tr := tar.NewReader(g)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		}
	}
	for name, data := range want {
		if got[cid+"/"+name] != data {
			t.Errorf("Get(%s): %s/%s = %q, want %q (tar held %v)", cid, cid, name, got[cid+"/"+name], data, got)
		}
	}
}

// TestClientTransfers: a fetch with wait of held content is done; a fetch
// of content nobody has runs (searching) until cancelled, and the
// transfers list and the transfer itself say so.
func TestClientTransfers(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t)
	file, err := c.Add(ctx, bytes.NewReader([]byte("held")), api.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Fetch(ctx, file.CID, api.FetchOptions{Wait: true, Pin: true})
	if err != nil || done.State != api.TransferDone || done.CID != file.CID || !done.Pinned {
		t.Fatalf("Fetch(wait) = %+v, %v; want done and pinned", done, err)
	}
	forever := time.Duration(0)
	absent := absentCID(t)
	run, err := c.Fetch(ctx, absent, api.FetchOptions{Timeout: &forever, Name: "nobody.bin"})
	if err != nil || run.State != api.TransferRunning || run.Phase != api.PhaseSearching || run.Name != "nobody.bin" {
		t.Fatalf("Fetch(%s) = %+v, %v; want running, searching", absent, run, err)
	}
	all, err := c.Transfers(ctx)
	if err != nil || len(all) != 2 || all[0].ID != run.ID {
		t.Fatalf("Transfers = %+v, %v; want 2, newest %s first", all, err, run.ID)
	}
	if got, err := c.Transfer(ctx, done.ID); err != nil || got.State != api.TransferDone {
		t.Fatalf("Transfer(%s) = %+v, %v", done.ID, got, err)
	}
	final, err := c.CancelTransfer(ctx, run.ID)
	if err != nil || final.State != api.TransferFailed || final.Error == "" {
		t.Fatalf("CancelTransfer = %+v, %v; want failed with a reason", final, err)
	}
	if _, err := c.Fetch(ctx, absent, api.FetchOptions{Wait: true, Timeout: new(50 * time.Millisecond)}); !errors.Is(err, api.ErrTimeout) {
		t.Fatalf("Fetch(wait, 50ms) of %s = %v; want api.ErrTimeout", absent, err)
	}
}

// TestClientSwarmAndCluster: the swarm view of a node with the extension
// on (the default) and one connected peer that has asked for nothing: a
// swarm peer starts choked, a plain Bitswap one is never choked; the
// cluster view of a node without a cluster is ErrNotFound naming the
// setting.
func TestClientSwarmAndCluster(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t)
	other := startNode(t)
	if _, err := c.Connect(ctx, other.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	sw, err := c.Swarm(ctx)
	if err != nil || !sw.Extension || len(sw.Peers) != 1 || sw.Peers[0].Peer != other.Info().ID || len(sw.Roots) != 0 || sw.Slots.Used != 0 || sw.Slots.Total == 0 {
		t.Fatalf("Swarm = %+v, %v; want the extension on, the one peer, no roots, no slot used", sw, err)
	}
	if p := sw.Peers[0]; p.AmChoking != p.Extension || p.PeerInterested || p.BytesOut != 0 {
		t.Fatalf("peer %+v: want choked if and only if it speaks the extension, not interested, sent nothing", p)
	}
	_, err = c.Cluster(ctx)
	var e *api.Error
	if !errors.Is(err, api.ErrNotFound) || !errors.As(err, &e) || e.Status != 404 || !strings.Contains(e.Message, "cluster.rest_addr") {
		t.Fatalf("Cluster without a cluster: %v", err)
	}
}
