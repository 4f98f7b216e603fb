//go:build unix

package main

import (
	"log/slog"
	"syscall"

	"github.com/shoalnet/shoal/node"
)

// raiseOpenFileLimit lifts the soft open-file limit to the hard one and
// returns the limit now in force. Go's runtime does the same at start on
// Linux; doing it here too keeps it true on every Unix and gives the
// number to check.
func raiseOpenFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return lim.Cur, err
		}
		lim = raised
	}
	return lim.Cur, nil
}

// checkOpenFileLimit raises the open-file limit and warns when it is
// below what the configured caps may use at once.
func checkOpenFileLimit(cfg node.Config, log *slog.Logger) {
	have, err := raiseOpenFileLimit()
	if err != nil {
		log.Warn("could not raise the open-file limit", "limit", have, "err", err)
	}
	need := uint64(cfg.API.MaxConns + cfg.API.GatewayMaxConns + cfg.Resources.MaxFDs + 64)
	if have < need {
		log.Warn("the open-file limit is below what api.max_conns, api.gateway_max_conns and resources.max_fds may use: raise it (ulimit -n, systemd LimitNOFILE=) or lower those",
			"limit", have, "need", need)
	}
}
