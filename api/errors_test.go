package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shoalnet/shoal/api"
)

// TestClientErrors: every route's failure reaches the caller as an
// *api.Error with the server's status, code and message, and matches the
// sentinel of its code.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t)
	dir, err := c.Add(ctx, strings.NewReader(string(tarOf(t, map[string]string{"f": "x"}))), api.AddOptions{Tar: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		do      func() error
		status  int
		code    string
		is      error
		message string
	}{
		{"connect", func() error { _, err := c.Connect(ctx, "/ip4/127.0.0.1/tcp/1"); return err }, 400, api.CodeBadRequest, api.ErrBadRequest, "has no /p2p/<peer id>"},
		{"add", func() error { _, err := c.Add(ctx, strings.NewReader("x"), api.AddOptions{Name: "a/b"}); return err }, 400, api.CodeBadRequest, api.ErrBadRequest, "name="},
		{"fetch", func() error { _, err := c.Fetch(ctx, "nope", api.FetchOptions{}); return err }, 400, api.CodeBadRequest, api.ErrBadRequest, `"nope" is not a valid CID`},
		{"transfer", func() error { _, err := c.Transfer(ctx, "t-none"); return err }, 404, api.CodeNotFound, api.ErrNotFound, `no transfer "t-none"`},
		{"cancel", func() error { _, err := c.CancelTransfer(ctx, "t-none"); return err }, 404, api.CodeNotFound, api.ErrNotFound, `no transfer "t-none"`},
		{"stat", func() error { _, err := c.StatPath(ctx, dir.CID+"/missing"); return err }, 404, api.CodeNotFound, api.ErrNotFound, "missing"},
		{"cat", func() error { _, err := c.Cat(ctx, dir.CID, 0); return err }, 400, api.CodeBadRequest, api.ErrBadRequest, "not a file"},
		{"get", func() error { _, err := c.Get(ctx, dir.CID+"/missing"); return err }, 404, api.CodeNotFound, api.ErrNotFound, "missing"},
		{"pin", func() error { _, err := c.Pin(ctx, "bafy!"); return err }, 400, api.CodeBadRequest, api.ErrBadRequest, "is not a valid CID"},
		{"unpin", func() error { _, err := c.Unpin(ctx, absentCID(t)); return err }, 404, api.CodeNotFound, api.ErrNotFound, "not pinned"},
	}
	for _, tc := range cases {
		err := tc.do()
		var e *api.Error
		if !errors.As(err, &e) || e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.message) ||
			e.Error() != e.Message || !errors.Is(err, tc.is) {
			t.Errorf("%s: error %#v (%v); want an *api.Error with status %d, code %s, a message with %q, matching %v",
				tc.name, e, err, tc.status, tc.code, tc.message, tc.is)
		}
	}
}

// TestClientAuthAndReach: a wrong token is ErrUnauthorized with the
// server's words; nothing listening is ErrNoDaemon; a server that is not a
// shoal API is named as such; a malformed base URL is refused.
func TestClientAuthAndReach(t *testing.T) {
	ctx := context.Background()
	base := serveAPI(t, startNode(t), "s3cret")
	for _, token := range []string{"", "wrong"} {
		c, err := api.NewClient(base, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ID(ctx)
		var e *api.Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || !errors.Is(err, api.ErrUnauthorized) || !strings.Contains(e.Message, "needs a token") {
			t.Errorf("token %q: %v; want 401 unauthorized naming the token", token, err)
		}
	}
	if c, _ := api.NewClient(base, "s3cret", nil); c != nil {
		if _, err := c.ID(ctx); err != nil {
			t.Errorf("the right token: %v", err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	c, err := api.NewClient(closed, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ls(ctx); !errors.Is(err, api.ErrNoDaemon) || !strings.Contains(err.Error(), "no shoal daemon at http://"+closed) {
		t.Errorf("Ls at a closed port: %v; want ErrNoDaemon naming http://%s", err, closed)
	}

	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	c, _ = api.NewClient(other.URL, "", nil)
	_, err = c.GC(ctx)
	var e *api.Error
	if !errors.As(err, &e) || e.Status != 404 || !errors.Is(err, api.ErrNotFound) || !strings.Contains(e.Message, "a shoal API?") {
		t.Errorf("GC at a plain HTTP server: %v; want 404 asking whether it is a shoal API", err)
	}

	for _, bad := range []string{"ftp://h:1", "http://", "::"} {
		if _, err := api.NewClient(bad, "", nil); err == nil || !strings.Contains(err.Error(), "is not a URL like http://127.0.0.1:5080") {
			t.Errorf("NewClient(%q) = %v; want a refusal naming the form", bad, err)
		}
	}
}

// TestErrorBodyCode: the server's error body itself carries the code, so
// a client in another language reads the kind without mapping statuses.
func TestErrorBodyCode(t *testing.T) {
	c, _ := newClient(t)
	resp, err := http.Get(c.BaseURL() + "/api/v1/transfers/t-none")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 404 ||
		body.Code != api.CodeNotFound || !strings.Contains(body.Error, `no transfer "t-none"`) {
		t.Fatalf("GET /api/v1/transfers/t-none: %s %+v (%v); want 404 with code %s", resp.Status, body, err, api.CodeNotFound)
	}
}
