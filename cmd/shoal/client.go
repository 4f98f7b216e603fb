package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// clientFlags choose the daemon a client command talks to (with --home,
// a persistent flag of the root).
type clientFlags struct {
	api    string
	tokens tokenFlags
}

// addClientFlags registers --api, --api-token-file and --api-token on a
// client command.
func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	cmd.Flags().StringVar(&f.api, "api", "", "the daemon's API URL, e.g. http://127.0.0.1:5080 (default: read from the api file in --home)")
	f.tokens.register(cmd, "the daemon's API requires (without a flag: $SHOAL_API_TOKEN, else, when --api is not given, the home's api.token_file or api.token)")
}

// client is a thin client of the daemon's HTTP API.
type client struct {
	base  string // http://host:port, no trailing slash
	token string
	hc    *http.Client
}

// newClient finds the daemon: --api, else the api file in the home; and
// its token: --api-token, --api-token-file or $SHOAL_API_TOKEN, else (for
// the home's daemon) the home's api.token_file or api.token.
func newClient(cmd *cobra.Command, f *clientFlags) (*client, error) {
	token, err := f.tokens.resolve(cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	base := f.api
	if base == "" {
		home, err := homeDir(cmd)
		if err != nil {
			return nil, err
		}
		if token == "" {
			if token, err = homeToken(home); err != nil {
				return nil, err
			}
		}
		path := filepath.Join(home, APIFile)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no shoal daemon for home %s (%s does not exist): start one with \"shoal daemon\", or pass --api URL", home, path)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the daemon's API address: %w", err)
		}
		base = strings.TrimSpace(string(b))
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("API address %q is not a URL like http://127.0.0.1:5080", base)
	}
	return &client{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{}}, nil
}

// request sends one API request. A non-2xx answer becomes an error in the
// daemon's own words.
func (c *client) request(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	hdr := http.Header{}
	if contentType != "" {
		hdr.Set("Content-Type", contentType)
	}
	return c.requestHeader(ctx, method, path, body, hdr)
}

// requestHeader is request with any headers.
func (c *client) requestHeader(ctx context.Context, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v1/"+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, &exitError{code: 1, err: &codedError{code: "no_daemon", err: fmt.Errorf("no shoal daemon at %s: start one with \"shoal daemon\"", c.base)}}
		}
		return nil, fmt.Errorf("talking to the shoal daemon at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, daemonError(resp)
	}
	return resp, nil
}

// daemonError turns an error answer into the daemon's message, with a code
// from its HTTP status for --json.
func daemonError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return &codedError{code: statusCode(resp.StatusCode), err: errors.New(e.Error)}
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if line == "" {
		line = resp.Status
	}
	return &codedError{code: statusCode(resp.StatusCode),
		err: fmt.Errorf("the daemon answered %s: %s (is %s a shoal API?)", resp.Status, line, resp.Request.URL.Host)}
}

// codedError is an error with the machine-readable code `--json` prints
// beside it.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// statusCode names the kind of failure an HTTP status stands for.
func statusCode(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return "bad_request"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "unauthorized"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusGatewayTimeout:
		return "timeout"
	case status == http.StatusInsufficientStorage:
		return "no_space"
	case status >= 500:
		return "daemon_error"
	}
	return "error"
}

// errorBody is what every command prints on stderr for an error under
// --json: {"error": "<the sentence>", "code": "<kind>"}; the exit code is
// non-zero as without --json.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// jsonError is err as an errorBody. Codes: no_daemon, bad_request,
// unauthorized, not_found, timeout, no_space, daemon_error, interrupted,
// error (anything else, such as bad flags or a local file problem).
func jsonError(err error) errorBody {
	code := "error"
	var ce *codedError
	var ee *exitError
	switch {
	case errors.As(err, &ce):
		code = ce.code
	case errors.As(err, &ee) && ee.code == 130:
		code = "interrupted"
	}
	return errorBody{Error: err.Error(), Code: code}
}

// getJSON and postJSON decode a JSON answer into out.
func (c *client) getJSON(ctx context.Context, path string, out any) error {
	return c.doJSON(ctx, http.MethodGet, path, nil, "", out)
}

func (c *client) postJSON(ctx context.Context, path string, body io.Reader, contentType string, out any) error {
	return c.doJSON(ctx, http.MethodPost, path, body, contentType, out)
}

func (c *client) doJSON(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	resp, err := c.request(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the daemon's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
