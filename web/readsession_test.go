package web

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// readCounts is what one read cost the reading node and its peer.
type readCounts struct {
	lookups, fetches, handed, received, wants uint64
}

func countsOf(reader, seed *node.Node) readCounts {
	r, s := reader.Stats(), seed.Stats()
	return readCounts{lookups: r.Reads.ProviderLookups, fetches: r.Reads.ClientFetches, handed: r.Reads.BlocksHanded,
		received: r.Exchange.BlocksReceived, wants: s.Exchange.WantsReceived}
}

func (c readCounts) since(b readCounts) readCounts {
	return readCounts{c.lookups - b.lookups, c.fetches - b.fetches, c.handed - b.handed, c.received - b.received, c.wants - b.wants}
}

// TestReadSessionCounts: reads that are not whole-DAG fetches, of
// content a connected peer holds — a gateway Range request, one below a
// directory (a path walk), ?format=raw of a file below a directory,
// ?format=car, an API cat of a Range — each make one DHT provider
// lookup (the session's, for the root the request names), not one per
// block, and one exchange-client fetch (the session's, which every block
// the read lacks joins), not one per block; every block a Range read waits for is handed to it as it is
// stored rather than read back. The bytes are checked. The counts of
// each read (lookups, exchange-client fetches, blocks received and
// handed over, want entries the seeder got) are logged for
// bench/e2e.md.
func TestReadSessionCounts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const mib = 1 << 20
	big := randomBytes(12*mib, 41)                  // 12 leaves of 1 MiB under one root
	c := sim.NewCluster(t, 2, sim.ClusterOptions{}) // node 1 starts connected to 0
	seed, reader := c.Node(0), c.Node(1)
	// Every read is of a root of its own, so each opens a fresh session
	// (one lingers after its request).
	tree := func(tag string) cid.Cid {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		for _, f := range []struct {
			name string
			data []byte
		}{{"big.bin", big}, {"small.txt", []byte("a small file below directory " + tag + "\n")}} {
			if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(f.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		res, err := seed.AddTar(ctx, &tb)
		if err != nil {
			t.Fatal(err)
		}
		return res.CID
	}
	file := func(data []byte) cid.Cid {
		res, err := seed.AddFile(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return res.CID
	}
	other := randomBytes(12*mib, 43)
	ranged, carred := file(other), file(randomBytes(4*mib, 44))
	walked, rawed, catted := tree("a"), tree("b"), tree("c")
	// Announced first: a lookup that found nobody would be repeated.
	for _, r := range []cid.Cid{ranged, carred, walked, rawed, catted} {
		for _, ok := seed.Router().LastProvided(r); !ok; _, ok = seed.Router().LastProvided(r) {
			select {
			case <-ctx.Done():
				t.Fatalf("the seeder never announced %s", r)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	gw := newTestGateway(t, reader, 0)
	api := newTestAPI(t, reader, nil)
	from, to := uint64(5*mib+12345), uint64(9*mib+12345) // 5 leaves
	rng := map[string]string{"Range": "bytes=" + u(from) + "-" + u(to-1)}
	for _, tc := range []struct {
		name, url string
		hdr       map[string]string
		status    int
		want      []byte
		// blocks the reader waits for from the peer, each of which
		// must be handed over (0: not checked — a CAR's blocks come
		// from a whole-DAG fetch ahead of the walk).
		handed uint64
	}{
		{"range", gw.URL + "/ipfs/" + ranged.String(), rng, http.StatusPartialContent, other[from:to], 5},
		{"path walk and range", gw.URL + "/ipfs/" + walked.String() + "/big.bin", rng, http.StatusPartialContent, big[from:to], 5},
		{"raw below a directory", gw.URL + "/ipfs/" + rawed.String() + "/small.txt?format=raw", nil, http.StatusOK, []byte("a small file below directory b\n"), 1},
		{"car", gw.URL + "/ipfs/" + carred.String() + "?format=car", nil, http.StatusOK, nil, 0},
		{"API cat of a range", api.URL + "/api/v1/cat/" + catted.String() + "/big.bin", rng, http.StatusPartialContent, big[from:to], 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := reader.GC(ctx); err != nil { // hold nothing again
				t.Fatal(err)
			}
			before := countsOf(reader, seed)
			status, _, body := call(t, "GET", tc.url, nil, tc.hdr)
			got := countsOf(reader, seed).since(before)
			t.Logf("%s: %d DHT lookups, %d client fetches, %d blocks received, %d handed over; the seeder got %d want entries",
				tc.name, got.lookups, got.fetches, got.received, got.handed, got.wants)
			if status != tc.status || tc.want != nil && !bytes.Equal(body, tc.want) {
				t.Fatalf("GET %s: %d (want %d), %d bytes, equal=%v", tc.url, status, tc.status, len(body), bytes.Equal(body, tc.want))
			}
			if got.lookups != 1 {
				t.Errorf("one read made %d DHT provider lookups, want 1 (the session's)", got.lookups)
			}
			if got.fetches != 1 {
				t.Errorf("one read started %d exchange-client fetches, want 1 (the session's)", got.fetches)
			}
			if got.handed < tc.handed {
				t.Errorf("%d blocks were handed to the reader as they arrived, want at least %d (the rest were read back from the store)", got.handed, tc.handed)
			}
		})
	}
}
