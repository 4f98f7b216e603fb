package main

import (
	"slices"
	"testing"
)

// The tail of the sim package's output in the CI run that failed on
// 2026-12-02 (registers after a signal in the race runtime's C code),
// with the PC line its head had.
const tsanDeath = `SIGSEGV: segmentation violation
PC=0x41cb49 m=12 sigcode=1 addr=0x10000000000fffff

goroutine 0 gp=0xc000503180 m=12 mp=0xc000600008 [idle]:
rax    0x0
rip    0x41cb49
rflags 0x10202
FAIL	github.com/shoalnet/shoal/sim	106.508s
`

func TestRuntimeDeaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []string
		ok   bool
	}{
		{"all passed", "ok  \tgithub.com/shoalnet/shoal/swarm\t3.071s\n", nil, false},
		{"a death in the race runtime", "ok  \tx/a\t1s\n" + tsanDeath + "ok  \tx/b\t2s\nFAIL\n",
			[]string{"github.com/shoalnet/shoal/sim"}, true},
		{"a ThreadSanitizer CHECK", "ThreadSanitizer: CHECK failed: tsan_rtl.cpp:282 \"((x)) != (0)\" (0x0, 0x0)\nFAIL\tx/sim\t90s\n",
			[]string{"x/sim"}, true},
		{"a failed test beside the death", tsanDeath + "--- FAIL: TestX (0.1s)\n    x_test.go:9: wrong bytes\nFAIL\nFAIL\tx/a\t1s\n", nil, false},
		{"a failed test in the same package", "--- FAIL: TestY (1s)\n" + tsanDeath, nil, false},
		{"a data race", "WARNING: DATA RACE\nWrite at 0x00c000123 by goroutine 7:\n" + tsanDeath, nil, false},
		{"a panic", "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x5d1f2a]\nFAIL\tx/a\t1s\n", nil, false},
		{"a timeout", "panic: test timed out after 20m0s\nFAIL\tx/a\t1200s\n", nil, false},
		{"a build failure", "# x/a\na.go:3:1: syntax error\nFAIL\tx/a [build failed]\n", nil, false},
		{"a kill", "SIGABRT: abort\nPC=0x44054e m=0 sigcode=0\nFAIL\tx/a\t1s\n", nil, false},
		{"a Go fatal error", "fatal error: concurrent map writes\nSIGABRT: abort\nPC=0x4711 m=0 sigcode=0\nFAIL\tx/a\t1s\n", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := runtimeDeaths(tc.out)
			if ok != tc.ok || ok && !slices.Equal(got, tc.want) {
				t.Errorf("runtimeDeaths = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFlagsOnly(t *testing.T) {
	got := flagsOnly([]string{"-timeout", "20m", "-count=1", "-v", "./...", "-run", "TestA"})
	want := []string{"-timeout", "20m", "-count=1", "-v", "-run", "TestA"}
	if !slices.Equal(got, want) {
		t.Errorf("flagsOnly = %q, want %q", got, want)
	}
}
