// Command racetest runs `go test -race` with the arguments it is given and,
// when a package's test binary died inside the race detector's runtime
// rather than failing a test, runs that package once more.
//
// Why: Go's race runtime (ThreadSanitizer, linked into every -race test
// binary) has crashed, rarely, in the sim package, whose tests run
// hundreds of simulated nodes in testing/synctest bubbles — a
// "ThreadSanitizer: CHECK failed" or a SIGSEGV in the runtime's C code,
// with no Go stack of ours and no race report (golang/go#78156 reports
// the same CHECK under synctest on go1.26; CI saw it twice in about a
// dozen runs on go1.26.8). shoal has no C code of its own, so a memory
// fault in C code is the race runtime's. Such a death says nothing about
// shoal, yet it failed CI. Everything else fails as before: a test failure, a panic, a
// data race, a timeout, or a second death of the same package.
//
//	go run ./internal/racetest -timeout 20m ./...
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

func main() {
	args := os.Args[1:]
	out, code := run(args, os.Stdout)
	if code == 0 {
		return
	}
	pkgs, ok := runtimeDeaths(out)
	if !ok {
		os.Exit(code)
	}
	fmt.Fprintf(os.Stderr, "\nracetest: %s: the test binary died inside the race detector's runtime "+
		"(a signal in its C code, no test failure, panic or race report): running once more\n",
		strings.Join(pkgs, ", "))
	_, code = run(append(flagsOnly(args), pkgs...), os.Stdout)
	os.Exit(code)
}

// run runs go test -race args, copying its output to w, and returns the
// output and the exit code.
func run(args []string, w io.Writer) (string, int) {
	var buf bytes.Buffer
	cmd := exec.Command("go", append([]string{"test", "-race"}, args...)...)
	cmd.Stdout = io.MultiWriter(w, &buf)
	cmd.Stderr = cmd.Stdout
	cmd.Stdin = os.Stdin
	err := cmd.Run()
	if err == nil {
		return buf.String(), 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return buf.String(), ee.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "racetest:", err)
	return buf.String(), 2
}

// flagsOnly drops the package patterns (arguments after the flags that do
// not start with "-") so that the rerun names only the dead packages.
// Flags racetest is given take their value with "=" or as the next
// argument; both are kept.
func flagsOnly(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		out = append(out, a)
		if !strings.Contains(a, "=") && takesValue(a) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// takesValue reports whether go test flag a is followed by a value.
func takesValue(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "race", "v", "short", "failfast", "json", "cover", "benchmem", "x", "n", "a", "trimpath":
		return false
	}
	return true
}

var (
	// The end of one package's output: "ok  \tpkg\t1.2s", "FAIL\tpkg\t3s",
	// "?   \tpkg\t[no test files]", "FAIL\tpkg [build failed]".
	pkgLine = regexp.MustCompile(`^(ok|FAIL|\?)\s+(\S+)(\s|$)`)
	// A memory fault in code that is not Go's: the runtime prints the
	// signal's name at the start of a line, then PC= and the registers (a
	// fault in Go code is a panic, "[signal SIGSEGV: …" after "panic: ";
	// SIGABRT and SIGQUIT are a kill or a timeout's dump, not counted).
	signalLine = regexp.MustCompile(`^SIG(SEGV|BUS): `)
	pcLine     = regexp.MustCompile(`^PC=0x[0-9a-f]+ m=`)
)

// runtimeDeaths reads go test's output and returns the packages that
// failed, with ok true only if every one of them died inside the race
// runtime and nothing else failed.
func runtimeDeaths(out string) ([]string, bool) {
	var (
		block []string
		dead  []string
		other bool
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := pkgLine.FindStringSubmatch(line)
		if m == nil {
			block = append(block, line)
			continue
		}
		if m[1] == "FAIL" {
			if strings.Contains(line, "[build failed]") || strings.Contains(line, "[setup failed]") || !diedInRuntime(block) {
				other = true
			} else {
				dead = append(dead, m[2])
			}
		}
		block = block[:0]
	}
	if len(block) > 0 && hasFailure(block) {
		other = true // output after the last package line: go test's own error
	}
	return dead, len(dead) > 0 && !other
}

// diedInRuntime reports whether one package's output shows a death in
// the race runtime and no failure of a test.
func diedInRuntime(block []string) bool {
	if hasFailure(block) {
		return false
	}
	tsan, signal, pc := false, false, false
	for _, l := range block {
		switch {
		case strings.Contains(l, "ThreadSanitizer: CHECK failed") || strings.Contains(l, "ThreadSanitizer CHECK failed"):
			tsan = true
		case signalLine.MatchString(l):
			signal = true
		case pcLine.MatchString(l):
			pc = true
		}
	}
	return tsan || signal && pc
}

// hasFailure reports whether lines show a failed test, a panic, a data
// race, a Go fatal error or a timeout.
func hasFailure(lines []string) bool {
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "--- FAIL"),
			strings.HasPrefix(l, "panic: "),
			strings.Contains(l, "WARNING: DATA RACE"),
			strings.Contains(l, "race detected during execution of test"),
			strings.HasPrefix(l, "fatal error: ") && !strings.Contains(l, "unexpected signal"),
			strings.HasPrefix(l, "go: "):
			return true
		}
	}
	return false
}
