package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/api"
)

// Files a daemon keeps in its home besides the api file: its process ID
// (for `shoal stop`) and, when detached, its log.
const (
	PIDFile       = "daemon.pid"
	DaemonLogFile = "daemon.log"
)

// detachWait bounds how long `shoal daemon --detach` waits for the API.
const detachWait = 2 * time.Minute

// writePIDFile records this process in home and returns the function
// that removes the record again, if it is still ours.
func writePIDFile(home string) (func(), error) {
	path := filepath.Join(home, PIDFile)
	me := strconv.Itoa(os.Getpid())
	if err := writeHomeFile(path, []byte(me+"\n")); err != nil {
		return func() {}, fmt.Errorf("writing %s: %w", path, err)
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == me {
			os.Remove(path)
		}
	}, nil
}

// readPIDFile returns the process ID recorded in home, 0 if none is.
func readPIDFile(home string) (int, error) {
	path := filepath.Join(home, PIDFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not hold a process ID (%q): delete it", path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// detachArgs is this invocation's arguments without --detach, for the
// daemon started in the background.
func detachArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if a == "--detach" || strings.HasPrefix(a, "--detach=") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// detachedOutput is what `shoal daemon --detach` prints (--json).
type detachedOutput struct {
	PID  int    `json:"pid"`
	API  string `json:"api"`
	Log  string `json:"log"`
	Home string `json:"home"`
}

// detach starts this same command again without --detach, in a new
// session with its output appended to home's daemon.log, and returns once
// its API answers — or with the daemon's own words if it exits first.
func detach(cmd *cobra.Command, g *globalFlags, home string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the shoal binary to start in the background: %w", err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating home %s: %w", home, err)
	}
	logPath := filepath.Join(home, DaemonLogFile)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the daemon's log: %w", err)
	}
	defer logf.Close()
	start, _ := logf.Seek(0, io.SeekEnd)
	child := exec.Command(exe, detachArgs(os.Args[1:])...)
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("starting %s in the background: %w", exe, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = child.Wait(); close(exited) }()
	api, err := awaitAPI(cmd.Context(), home, child.Process.Pid, exited, &waitErr)
	if err != nil {
		stopChild(child.Process, exited)
		return fmt.Errorf("%w; its log says:\n%s", err, logSince(logPath, start))
	}
	out := detachedOutput{PID: child.Process.Pid, API: api, Log: logPath, Home: home}
	if g.json {
		return writeJSON(cmd.OutOrStdout(), out)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "shoal daemon running in the background (pid %d)\n  api:  %s\n  log:  %s\n  stop: shoal stop --home %s\n",
		out.PID, out.API, out.Log, home)
	return err
}

// stopChildGrace is how long a daemon that failed to come up gets to shut
// down after SIGTERM before it is killed (a var for tests).
var stopChildGrace = 10 * time.Second

// stopChild ends a background daemon that did not come up, unless it has
// exited already: SIGTERM, then SIGKILL after stopChildGrace. It returns
// once the process is gone, so its last log lines are in the log and its
// home's LOCK is free when the user retries.
func stopChild(p *os.Process, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopChildGrace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = p.Kill()
		<-exited
	}
}

// awaitAPI waits until the daemon pid has written its pid and api files
// and its API answers HTTP (any status: a token may be required). exited
// closes when the daemon has exited, with *waitErr its exit status.
func awaitAPI(ctx context.Context, home string, pid int, exited <-chan struct{}, waitErr *error) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, detachWait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("the daemon exited before its API answered (%v)", *waitErr)
		case <-ctx.Done():
			return "", fmt.Errorf("the daemon's API did not answer within %v (stopped it)", detachWait)
		case <-tick.C:
		}
		if got, _ := readPIDFile(home); got != pid {
			continue
		}
		b, err := os.ReadFile(filepath.Join(home, APIFile))
		if err != nil {
			continue
		}
		addr := strings.TrimSpace(string(b))
		c, err := api.NewClient(addr, "", hc)
		if err != nil {
			return "", fmt.Errorf("the daemon wrote an API address %q that is not a URL", addr)
		}
		// Any HTTP answer will do: a daemon with a token answers 401.
		var ae *api.Error
		if _, err := c.ID(ctx); err == nil || (errors.As(err, &ae) && ae.Status != 0) {
			return addr, nil
		}
	}
}

// logSince is what the log at path gained after offset, at most its last
// 4 KiB, indented.
func logSince(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return "  (no log: " + path + ")"
	}
	b = b[offset:]
	if len(b) > 4<<10 {
		b = b[len(b)-4<<10:]
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n  ")
}

func newStopCmd(g *globalFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "stop the daemon of a home (one started with daemon --detach, or any other)",
		Long: `stop sends the daemon recorded in the home's daemon.pid SIGTERM and waits
until it has shut down: its store closed and its files removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd)
			if err != nil {
				return err
			}
			pid, err := stopDaemon(cmd.Context(), home, timeout)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"pid": pid, "home": home, "stopped": true})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "stopped the shoal daemon of %s (pid %d)\n", home, pid)
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the daemon to shut down")
	return cmd
}

// stopDaemon signals the daemon of home and waits for its process to end.
func stopDaemon(ctx context.Context, home string, timeout time.Duration) (int, error) {
	pid, err := readPIDFile(home)
	if err != nil {
		return 0, err
	}
	if pid == 0 {
		return 0, fmt.Errorf("no shoal daemon for home %s (%s does not exist)", home, filepath.Join(home, PIDFile))
	}
	if !running(pid) {
		os.Remove(filepath.Join(home, PIDFile))
		return 0, fmt.Errorf("no shoal daemon for home %s: process %d named in %s is gone (removed the stale file)", home, pid, PIDFile)
	}
	if !isDaemon(pid) {
		// The daemon died without removing its file and the pid now
		// belongs to another program: never signal that.
		os.Remove(filepath.Join(home, PIDFile))
		return 0, fmt.Errorf("no shoal daemon for home %s: process %d named in %s is not a shoal daemon (removed the stale file)", home, pid, PIDFile)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("signalling the daemon (pid %d): %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for running(pid) {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the daemon (pid %d) did not stop within %v: see %s, or end it with kill -9 %d", pid, timeout, filepath.Join(home, DaemonLogFile), pid)
		case <-tick.C:
		}
	}
	return pid, nil
}

// running reports whether process pid exists and has not exited (a zombie
// waiting for its parent has exited).
// isDaemon reports whether process pid runs `daemon` (its command line
// has that argument); without /proc it trusts the pid file.
func isDaemon(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return true
	}
	for _, arg := range bytes.Split(b, []byte{0}) {
		if string(arg) == "daemon" {
			return true
		}
	}
	return false
}

func running(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill(0)
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}
