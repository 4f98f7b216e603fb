package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// A testing/synctest bubble is the only way to run Go code in virtual
// time, and synctest.Test wants the *testing.T of a running test. The
// binary gets one the way a generated test main does: testing.MainStart
// with one test, the simulation, and the few hooks go test would
// provide (virtualDeps). MainStart is not covered by the Go 1
// compatibility promise; if a Go release changes its hooks, this file
// stops compiling (not a silent change at run time), and
// TestSimFromBinary builds the binary in CI.

// errNotTestBinary is what the testing hooks shoal does not provide
// answer (profiles, fuzzing, test logs: none of them is asked for,
// since no -test.* flag is ever parsed).
var errNotTestBinary = errors.New("shoal sim: not available in virtual time (not a test binary)")

// virtualDeps implements testing's unexported testDeps interface the way
// testing.Main's own stub (matchStringOnly) does.
type virtualDeps struct{}

// fuzzEntry is testing's corpusEntry (an alias of this struct type).
type fuzzEntry = struct {
	Parent     string
	Path       string
	Data       []byte
	Values     []any
	Generation int
	IsSeed     bool
}

func (virtualDeps) MatchString(pat, str string) (bool, error) { return regexp.MatchString(pat, str) }
func (virtualDeps) ImportPath() string                        { return "" }
func (virtualDeps) ModulePath() string                        { return "" }
func (virtualDeps) SetPanicOnExit0(bool)                      {}
func (virtualDeps) StartCPUProfile(io.Writer) error           { return errNotTestBinary }
func (virtualDeps) StopCPUProfile()                           {}
func (virtualDeps) StartTestLog(io.Writer)                    {}
func (virtualDeps) StopTestLog() error                        { return errNotTestBinary }
func (virtualDeps) WriteProfileTo(string, io.Writer, int) error {
	return errNotTestBinary
}
func (virtualDeps) CoordinateFuzzing(time.Duration, int64, time.Duration, int64, int, []fuzzEntry, []reflect.Type, string, string) error {
	return errNotTestBinary
}
func (virtualDeps) RunFuzzWorker(func(fuzzEntry) error) error { return errNotTestBinary }
func (virtualDeps) ReadCorpus(string, []reflect.Type) ([]fuzzEntry, error) {
	return nil, errNotTestBinary
}
func (virtualDeps) CheckCorpus([]any, []reflect.Type) error { return nil }
func (virtualDeps) ResetCoverage()                          {}
func (virtualDeps) SnapshotCoverage()                       {}
func (virtualDeps) InitRuntimeCoverage() (string, func(string, string) (string, error), func() float64) {
	return "", nil, nil
}

// inVirtualTime runs f inside a synctest bubble and returns its error.
// f gets a context made inside the bubble: a bubbled goroutine waiting
// on a channel from outside would stop the virtual clock, so
// cancellation of ctx (Ctrl-C) crosses over as a flag that a bubbled
// goroutine polls every virtual second. f must leave no goroutine
// running when it returns (synctest.Test fails otherwise).
func inVirtualTime(ctx context.Context, stderr io.Writer, f func(ctx context.Context) error) error {
	if testing.Testing() {
		// M.Run inside a running test binary would start a second test
		// run on the same flags and output; the sim package's tests run
		// plans in virtual time themselves.
		return errors.New("shoal sim: virtual time from inside a test binary is not supported; run the built binary, or --real-time")
	}
	var stop atomic.Bool
	bridged := make(chan struct{})
	defer close(bridged)
	go func() {
		select {
		case <-ctx.Done():
			stop.Store(true)
			// A second Ctrl-C ends the process at once.
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			fmt.Fprintln(stderr, "\nstopping at the next simulated second (Ctrl-C again to quit now)")
		case <-bridged:
		}
	}()

	var runErr error
	test := func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			polled := make(chan struct{})
			go func() {
				defer close(polled)
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for {
					select {
					case <-tick.C:
						if stop.Load() {
							cancel()
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			runErr = f(ctx)
			cancel()
			<-polled
		})
	}
	out, code, err := runOneTest(test)
	if err != nil {
		return err
	}
	if code != 0 && runErr == nil {
		return fmt.Errorf("shoal sim: the virtual-time run failed:\n%s", strings.TrimSpace(out))
	}
	return runErr
}

// runOneTest runs test through testing.MainStart and returns what the
// testing package printed (PASS, or a failure's log), kept off stdout so
// that --json output stays clean.
func runOneTest(test func(*testing.T)) (string, int, error) {
	// M.Run parses the command line as -test.* flags unless flags were
	// already parsed; shoal's own flags are cobra's, so parse none.
	if !flag.Parsed() {
		if err := flag.CommandLine.Parse(nil); err != nil {
			return "", 0, err
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return "", 0, fmt.Errorf("shoal sim: %w", err)
	}
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, r)
		close(copied)
	}()
	saved := os.Stdout
	os.Stdout = w
	m := testing.MainStart(virtualDeps{}, []testing.InternalTest{{Name: "sim", F: test}}, nil, nil, nil)
	code := m.Run()
	os.Stdout = saved
	w.Close()
	<-copied
	r.Close()
	return buf.String(), code, nil
}
