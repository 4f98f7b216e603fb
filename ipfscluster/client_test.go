package ipfscluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/internal/clustertest"
)

func client(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := New(addr, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPinsRecorded: the recorded pinset and statuses join into each pin's
// wanted replication (factors) and held copies (peers "pinned").
func TestPinsRecorded(t *testing.T) {
	pins, err := client(t, clustertest.ServeRecorded(t, "")).Pins(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(pins)
	want := `[{"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","replication_min":-1,"replication_max":-1,"allocations":0,"pinned":2,` +
		`"peers":[{"peer":"12D3KooWGRUVh7mJgbmPTWN3nY3RqXYC4TVYsQnVhkBwwuTT3pGz","name":"shoal-a","status":"pinned"},` +
		`{"peer":"12D3KooWNz3oy3TVuhpsPXj7nzzcqvfMxxRZ1UH9fDG4oAKBtP4d","name":"shoal-b","status":"pinned"},` +
		`{"peer":"12D3KooWSsyt8Dg3NxiRRTFVvsyxBSzTU4z4KSr5dAXWV3iehRb3","name":"shoal-c","status":"pin_error","error":"context deadline exceeded"}]},` +
		`{"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","name":"movie.mkv","replication_min":2,"replication_max":3,"allocations":2,"pinned":1,` +
		`"peers":[{"peer":"12D3KooWGRUVh7mJgbmPTWN3nY3RqXYC4TVYsQnVhkBwwuTT3pGz","name":"shoal-a","status":"pinned"},` +
		`{"peer":"12D3KooWNz3oy3TVuhpsPXj7nzzcqvfMxxRZ1UH9fDG4oAKBtP4d","name":"shoal-b","status":"pinning"},` +
		`{"peer":"12D3KooWSsyt8Dg3NxiRRTFVvsyxBSzTU4z4KSr5dAXWV3iehRb3","name":"shoal-c","status":"remote"}]}]`
	if string(got) != want {
		t.Fatalf("pins:\n%s\nwant\n%s", got, want)
	}
}

// TestPinsEmpty: a cluster with no pins answers 204 to both streams.
func TestPinsEmpty(t *testing.T) {
	addr := clustertest.Serve(t, map[string]string{"/allocations": "", "/pins": ""})
	pins, err := client(t, addr).Pins(context.Background())
	if err != nil || len(pins) != 0 {
		t.Fatalf("pins of an empty cluster: %v, %v", pins, err)
	}
}

// TestPinsErrors: every way of not reading the cluster is ErrUnreachable
// with a message naming the address or the cluster's own words.
func TestPinsErrors(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/allocations":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":401,"message":"Unauthorized"}`))
		default:
			_, _ = w.Write([]byte("<html>not the cluster</html>"))
		}
	}))
	defer bad.Close()
	trailer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Stream-Error")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","type":"pin"}` + "\n"))
		w.Header().Set("X-Stream-Error", "rpc: the consensus is not ready")
	}))
	defer trailer.Close()
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"refused", dead, "is ipfs-cluster-service running"},
		{"status", strings.TrimPrefix(bad.URL, "http://"), "401 Unauthorized: Unauthorized"},
		{"trailer", strings.TrimPrefix(trailer.URL, "http://"), "the cluster's stream failed: rpc: the consensus is not ready"},
	} {
		c, err := New(tc.addr, &http.Client{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Pins(context.Background())
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrUnreachable saying %q", tc.name, err, tc.want)
		}
	}
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>not the cluster</html>"))
	}))
	defer notJSON.Close()
	c, _ := New(strings.TrimPrefix(notJSON.URL, "http://"), nil)
	if _, err := c.Pins(context.Background()); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not the cluster's JSON") {
		t.Errorf("HTML answer: %v", err)
	}
}

func TestCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9094": true, "cluster:9094": true, "[::1]:9094": true,
		"": false, "127.0.0.1": false, "http://127.0.0.1:9094": false, ":9094": false, "127.0.0.1:0": false,
	} {
		err := CheckAddr(addr)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("CheckAddr(%q) = %v", addr, err)
		}
	}
}

// FuzzDecodeStream: any bytes as a /pins answer give pins or an error,
// never a panic, and never more than MaxPins.
func FuzzDecodeStream(f *testing.F) {
	for _, path := range []string{"/pins", "/allocations"} {
		f.Add([]byte(clustertest.Recorded(f, path, "")))
	}
	f.Add([]byte(`{"cid":null,"peer_map":{"x":{"status":7}}}`))
	f.Add([]byte("}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := decodeStream(strings.NewReader(string(b)), func(d *json.Decoder) error {
			var s status
			if err := d.Decode(&s); err != nil {
				return err
			}
			n++
			return nil
		})
		if n > MaxPins+1 || (err == nil && n > 0 && len(b) == 0) {
			t.Fatalf("%d values read from %d bytes, err %v", n, len(b), err)
		}
	})
}
