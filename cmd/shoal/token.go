package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
)

// tokenEnv names the environment variable the daemon and the CLI take
// the API token from.
const tokenEnv = "SHOAL_API_TOKEN"

// tokenFlags are the command-line ways to give the API token, shared by
// the daemon and the client commands.
type tokenFlags struct {
	token string
	file  string
}

// register adds --api-token-file (whose help says what the token is for
// and where it comes from without a flag) and --api-token.
func (f *tokenFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&f.file, "api-token-file", "", "file whose first line is the bearer token "+what)
	cmd.Flags().StringVar(&f.token, "api-token", "", "the token itself: avoid, every local user sees it in ps; use $"+tokenEnv+" or --api-token-file")
}

// errTokenFlags is returned when both token flags are given.
var errTokenFlags = errors.New("--api-token and --api-token-file both given: pass one (preferably --api-token-file, or $" + tokenEnv + ")")

// resolve returns the token the command line gives: --api-token (with a
// warning on stderr), else --api-token-file, else $SHOAL_API_TOKEN; ""
// when none does.
func (f *tokenFlags) resolve(stderr io.Writer) (string, error) {
	switch {
	case f.token != "" && f.file != "":
		return "", errTokenFlags
	case f.token != "":
		fmt.Fprintf(stderr, "shoal: warning: --api-token puts the token on the command line, where every local user can read it (ps, /proc/<pid>/cmdline); set $%s or use --api-token-file PATH instead\n", tokenEnv)
		return f.token, nil
	case f.file != "":
		return node.ReadTokenFile(f.file)
	}
	return os.Getenv(tokenEnv), nil
}

// configToken is the token a node's config names (api.token, or the
// file api.token_file), "" if none.
func configToken(api node.APIConfig) (string, error) {
	if api.TokenFile != "" {
		return node.ReadTokenFile(api.TokenFile)
	}
	return api.Token, nil
}

// applyDaemonToken settles the daemon's API token into cfg.API.Token:
// the command line and $SHOAL_API_TOKEN (see resolve) over the config's
// api.token_file or api.token.
func applyDaemonToken(f *tokenFlags, cfg *node.Config, stderr io.Writer) error {
	tok, err := f.resolve(stderr)
	if err != nil {
		return err
	}
	if tok == "" {
		if tok, err = configToken(cfg.API); err != nil {
			return err
		}
	}
	cfg.API.Token, cfg.API.TokenFile = tok, ""
	return nil
}

// homeToken is the token in home's config, "" when the home has no
// config (the api file then names no daemon of it either).
func homeToken(home string) (string, error) {
	if _, err := os.Stat(filepath.Join(home, node.ConfigFile)); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return "", err
	}
	return configToken(cfg.API)
}
