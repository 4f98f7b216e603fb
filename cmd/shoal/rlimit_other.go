//go:build !unix

package main

import (
	"log/slog"

	"github.com/shoalnet/shoal/node"
)

// checkOpenFileLimit has nothing to raise outside Unix.
func checkOpenFileLimit(node.Config, *slog.Logger) {}
