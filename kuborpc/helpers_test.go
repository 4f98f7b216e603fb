package kuborpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/sim"
)

// startShoal starts an in-memory node on loopback and its RPC on a
// loopback port; it returns the node and the RPC's HOST:PORT.
func startShoal(t *testing.T, token string) (*node.Node, string) {
	t.Helper()
	n := sim.LoopbackNode(t, node.Parts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Addr: ln.Addr().String(), Token: token, Version: "test", RepoPath: t.TempDir(),
		SwarmAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, GatewayAddr: "127.0.0.1:8080"}, n)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return n, ln.Addr().String()
}

// answer is one HTTP answer, read to the end (trailers included).
type answer struct {
	status int
	header http.Header
	body   []byte
}

type request struct {
	method, path string   // path includes the query
	files        [][]byte // multipart parts, sent as Kubo's clients do
	header       [][2]string
}

func do(t *testing.T, addr string, rq request) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var body io.Reader
	ctype := ""
	if rq.files != nil {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for i, f := range rq.files {
			w, err := mw.CreateFormFile("file", fmt.Sprintf("f%d.bin", i))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(f)
		}
		mw.Close()
		body, ctype = &b, mw.FormDataContentType()
	}
	method := rq.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, h := range rq.header {
		if h[0] == "Host" {
			req.Host = h[1]
			continue
		}
		req.Header.Set(h[0], h[1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, rq.path, addr, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s on %s: reading: %v", method, rq.path, addr, err)
	}
	h := res.Header.Clone()
	for k, v := range res.Trailer {
		h["Trailer-"+k] = v
	}
	return answer{status: res.StatusCode, header: h, body: b}
}

func postJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("POST %s: %s: %s", url, res.Status, b)
	}
	return json.NewDecoder(res.Body).Decode(v)
}
