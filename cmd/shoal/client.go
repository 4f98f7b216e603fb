package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
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

// newClient finds the daemon: --api, else the api file in the home; and
// its token: --api-token, --api-token-file or $SHOAL_API_TOKEN, else (for
// the home's daemon) the home's api.token_file or api.token.
func newClient(cmd *cobra.Command, f *clientFlags) (*api.Client, error) {
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
	return api.NewClient(base, token, nil)
}

// jsonError is err as the body every command prints on stderr under
// --json: {"error": "<the sentence>", "code": "<kind>"}; the exit code is
// non-zero as without --json. Codes: api's (no_daemon, bad_request,
// unauthorized, not_found, timeout, no_space, daemon_error), interrupted,
// and error (anything else, such as bad flags or a local file problem).
func jsonError(err error) api.ErrorBody {
	code := api.CodeError
	var ae *api.Error
	var ee *exitError
	switch {
	case errors.As(err, &ae):
		code = ae.Code
	case errors.As(err, &ee) && ee.code == 130:
		code = "interrupted"
	}
	return api.ErrorBody{Error: err.Error(), Code: code}
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
