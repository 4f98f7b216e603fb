package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

// The streaming half of the web contract, run like the error table
// against every Node: a multi-block file read whole and in ranges through
// the API's cat and the gateway, the first event of the event stream, a
// read the client cuts and resumes with a Range request, and a read the
// node cannot finish (a block lost from its store), which must end in a
// broken body, never a short one that looks whole.

// streamFileSize spans four 1 MiB leaves, the last one short.
const streamFileSize = 3<<20 + 4321

// streamRanges cross block boundaries, start and end the file.
var streamRanges = []struct {
	header     string
	start, end int // inclusive
}{
	{"bytes=1048570-2097160", 1048570, 2097160},
	{"bytes=0-0", 0, 0},
	{"bytes=-100", streamFileSize - 100, streamFileSize - 1},
	{"bytes=3145720-", 3145720, streamFileSize - 1},
}

// runStreamCases checks the streaming contract against n; drop removes
// one block from n's store.
func runStreamCases(t *testing.T, n Node, drop func(t *testing.T, c cid.Cid)) {
	apiSrv := newTestAPI(t, n, nil)
	gwSrv := newTestGateway(t, n, 0)
	data := randomBytes(streamFileSize, 11)
	root := addFile(t, apiSrv.URL, data).CID
	cat, gw := apiSrv.URL+"/api/v1/cat/"+root, gwSrv.URL+"/ipfs/"+root

	t.Run("whole", func(t *testing.T) {
		for _, url := range []string{cat, gw} {
			status, hdr, got := call(t, "GET", url, nil, nil)
			if status != 200 || !bytes.Equal(got, data) || hdr.Get("Content-Length") != strconv.Itoa(len(data)) {
				t.Errorf("GET %s: %d, %d bytes (Content-Length %s), equal=%v; want 200 and the %d bytes shared",
					url, status, len(got), hdr.Get("Content-Length"), bytes.Equal(got, data), len(data))
			}
		}
		if _, hdr, _ := call(t, "GET", cat, nil, nil); hdr.Get("X-Content-Size") != strconv.Itoa(len(data)) || hdr.Get("ETag") != `"`+root+`"` {
			t.Errorf("cat headers: X-Content-Size %q, ETag %q", hdr.Get("X-Content-Size"), hdr.Get("ETag"))
		}
	})

	t.Run("ranges", func(t *testing.T) {
		for _, url := range []string{cat, gw} {
			for _, rg := range streamRanges {
				status, hdr, got := call(t, "GET", url, nil, map[string]string{"Range": rg.header})
				want := data[rg.start : rg.end+1]
				cr := fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.end, len(data))
				if status != http.StatusPartialContent || !bytes.Equal(got, want) || hdr.Get("Content-Range") != cr {
					t.Errorf("GET %s, Range %s: %d %q, %d bytes, equal=%v; want 206 %q", url, rg.header, status, hdr.Get("Content-Range"), len(got), bytes.Equal(got, want), cr)
				}
			}
			status, hdr, _ := call(t, "GET", url, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(data))})
			if status != http.StatusRequestedRangeNotSatisfiable || hdr.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(data)) {
				t.Errorf("GET %s, Range past the end: %d %q, want 416 bytes */%d", url, status, hdr.Get("Content-Range"), len(data))
			}
		}
	})

	t.Run("first event", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ev := firstEvent(ctx, t, apiSrv.URL+"/api/v1/events")
		if ev.Info.ID == "" || ev.Info.ID != n.Info().ID || ev.Peers == nil || ev.Transfers == nil || ev.Time.IsZero() {
			t.Errorf("first event = %+v, want this node (%s) with lists, not null", ev, n.Info().ID)
		}
	})

	t.Run("client cuts and resumes", func(t *testing.T) {
		for _, url := range []string{cat, gw} {
			head := readSome(t, url, 1<<20+12345)
			status, _, rest := call(t, "GET", url, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(head))})
			if got := append(head, rest...); status != http.StatusPartialContent || !bytes.Equal(got, data) {
				t.Errorf("GET %s cut after %d bytes, resumed: %d, %d bytes in all, equal=%v", url, len(head), status, len(got), bytes.Equal(got, data))
			}
		}
	})

	// Last: it loses a block for good.
	t.Run("node cuts", func(t *testing.T) {
		lost, err := cid.Decode(expectedCID(t, data[2<<20:3<<20])) // the third leaf
		if err != nil {
			t.Fatal(err)
		}
		// A pinned block is kept by the store: unpin the root, then lose
		// the leaf.
		if status, _, body := call(t, "POST", apiSrv.URL+"/api/v1/unpin/"+root, nil, nil); status != 200 {
			t.Fatalf("unpin: %d %s", status, body)
		}
		drop(t, lost)
		for _, url := range []string{cat, gw} {
			status, got, err := readAll(t, url)
			if status != 200 || err == nil || len(got) >= len(data) || !bytes.Equal(got, data[:len(got)]) {
				t.Errorf("GET %s with block %s lost: %d, %d bytes, equal prefix=%v, error %v; want 200, then a broken body that is a prefix of the file",
					url, lost, status, len(got), bytes.Equal(got, data[:min(len(got), len(data))]), err)
			}
		}
	})
}

// firstEvent reads an event stream up to its first "snapshot" event.
func firstEvent(ctx context.Context, t *testing.T, url string) apiv1.Event {
	t.Helper()
	resp := getURL(ctx, t, url)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry: ") {
		t.Fatalf("stream starts %q, want a retry hint", sc.Text())
	}
	for sc.Scan() {
		if sc.Text() != "event: snapshot" {
			continue
		}
		sc.Scan()
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		var ev apiv1.Event
		if !ok || json.Unmarshal([]byte(data), &ev) != nil {
			t.Fatalf("snapshot event data %q", sc.Text())
		}
		return ev
	}
	t.Fatalf("stream ended before a snapshot event: %v", sc.Err())
	return apiv1.Event{}
}

// readSome reads the first n bytes of url's body and hangs up.
func readSome(t *testing.T, url string, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := getURL(ctx, t, url)
	defer resp.Body.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, b); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, reading %d bytes: %v", url, resp.StatusCode, n, err)
	}
	return b
}

// readAll returns the status, the body as far as it came and the error
// that ended it early.
func readAll(t *testing.T, url string) (int, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp := getURL(ctx, t, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// getURL sends GET url within ctx; the caller closes the body.
func getURL(ctx context.Context, t *testing.T, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

// TestStreamMemNode and TestStreamRealNode run the same streaming cases.
func TestStreamMemNode(t *testing.T) {
	m := newMemNode()
	runStreamCases(t, m, func(t *testing.T, c cid.Cid) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.blocks[c]; !ok {
			t.Fatalf("memNode holds no block %s", c)
		}
		delete(m.blocks, c)
	})
}

// TestStreamRealNode: a real node over a store the test can take a block
// from; with no peer to ask, its search for the lost block ends after 2 s.
func TestStreamRealNode(t *testing.T) {
	bcfg := blockstore.DefaultConfig("")
	bcfg.Links = content.Links
	store := blockstore.NewMemory(bcfg)
	n := startNodeWithParts(t, node.Parts{Store: store}, func(c *node.Config) { c.Transfer.SearchTimeout.Duration = 2 * time.Second })
	runStreamCases(t, n, func(t *testing.T, c cid.Cid) {
		if err := store.Delete(context.Background(), c); err != nil {
			t.Fatalf("dropping %s: %v", c, err)
		}
	})
}
