package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestProgressBarUnits: the bar shows bytes done of the total, both in
// IEC units like every other size the CLI prints, never SI beside IEC.
func TestProgressBarUnits(t *testing.T) {
	var out bytes.Buffer
	bar := byteBar(&out, 256<<20, "fetching")
	if err := bar.Add64(12 << 20); err != nil {
		t.Fatal(err)
	}
	if err := bar.RenderBlank(); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "(12/256 MiB") {
		t.Fatalf("bar %q does not show done/total as 12/256 MiB", text)
	}
	if si := regexp.MustCompile(`\d (kB|MB|GB)`).FindString(text); si != "" {
		t.Fatalf("bar %q mixes in SI units (%q)", text, si)
	}
}
