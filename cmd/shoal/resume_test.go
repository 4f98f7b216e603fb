package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/node"
)

// breakingDaemon serves /api/v1/cat/x as the daemon would, except that the
// first `breaks` responses stop after cut bytes with the connection cut
// (as when the daemon's reader fails after the headers are sent); Range
// requests are honoured. The transfer is reported as state.
func breakingDaemon(t *testing.T, data []byte, breaks int, cut int, state, errMsg string) (*api.Client, *atomic.Int32) {
	t.Helper()
	var served atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cat/x", func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		if int(n) <= breaks {
			var start int
			rg := r.Header.Get("Range")
			if rg != "" {
				if _, err := fmt.Sscanf(rg, "bytes=%d-", &start); err != nil {
					t.Errorf("bad Range %q", rg)
				}
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
			if rg != "" {
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
				w.WriteHeader(http.StatusPartialContent)
			}
			_, _ = w.Write(data[start:min(start+cut, len(data))])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "", zeroTimeForTest, bytes.NewReader(data))
	})
	mux.HandleFunc("GET /api/v1/transfers/t1", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Transfer{ID: "t1", CID: "x", State: state, Error: errMsg})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(srv.URL, "", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, &served
}

func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFetchResumesBrokenStream: the stream breaks twice while the transfer
// runs; the CLI picks it up where it broke and the file is whole.
func TestFetchResumesBrokenStream(t *testing.T) {
	data := randomData(t, 3<<20)
	c, served := breakingDaemon(t, data, 2, 1<<20, node.TransferRunning, "")
	target := filepath.Join(t.TempDir(), "out")
	n, err := writeContent(context.Background(), c, "x", "t1", "file", target, false, io.Discard, io.Discard, func() error { return nil })
	if err != nil {
		t.Fatalf("writeContent: %v", err)
	}
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("wrote %d bytes (file %d), want the %d bytes served", n, len(got), len(data))
	}
	if served.Load() != 3 {
		t.Errorf("%d requests, want 3 (two broken, one resumed to the end)", served.Load())
	}
}

// TestFetchBrokenStreamFailedTransfer: when the transfer failed, its error
// is what the user reads, and nothing is left under the target's name.
func TestFetchBrokenStreamFailedTransfer(t *testing.T) {
	data := randomData(t, 2<<20)
	c, _ := breakingDaemon(t, data, 1, 1<<20, node.TransferFailed, "protocol: no peer can supply block bafyleaf")
	dir := t.TempDir()
	target := filepath.Join(dir, "out")
	_, err := writeContent(context.Background(), c, "x", "t1", "file", target, false, io.Discard, io.Discard, func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "no peer can supply block bafyleaf") {
		t.Fatalf("err = %v, want the transfer's error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind %v", ents)
	}
}

// TestFetchStreamKeepsBreaking: a stream that breaks without progress is
// given up after maxResumes tries, with an error that says where.
func TestFetchStreamKeepsBreaking(t *testing.T) {
	data := randomData(t, 1<<20)
	c, served := breakingDaemon(t, data, 100, 0, node.TransferRunning, "")
	target := filepath.Join(t.TempDir(), "out")
	_, err := writeContent(context.Background(), c, "x", "t1", "file", target, false, io.Discard, io.Discard, func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "content stream broke at byte 0") {
		t.Fatalf("err = %v, want a broken-stream error naming the offset", err)
	}
	if got := served.Load(); got != maxResumes+1 {
		t.Errorf("%d requests, want %d", got, maxResumes+1)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target exists after a failed fetch: %v", err)
	}
}

var zeroTimeForTest time.Time
