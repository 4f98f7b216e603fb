package node

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string // "" = no error
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"512B", 512, ""},
		{"1kB", 1000, ""},
		{"1KB", 1000, ""},
		{"1KiB", 1024, ""},
		{"1kib", 1024, ""},
		{"10MB", 10_000_000, ""},
		{"10 MiB", 10 << 20, ""},
		{"  50GiB ", 50 << 30, ""},
		{"50gb", 50_000_000_000, ""},
		{"1.5GiB", 3 << 29, ""},
		{".5KiB", 512, ""},
		{"0.1KiB", 102, ""}, // a fraction of a byte is dropped
		{"2TiB", 2 << 40, ""},
		{"7EiB", 7 << 60, ""},
		{"8EiB", 0, "larger than"},
		{"9223372036854775808", 0, "larger than"},
		{"", 0, "not a number"},
		{"GiB", 0, "not a number"},
		{"1.2.3MB", 0, "not a number"},
		{"-5MB", 0, "negative"},
		{"1e9", 0, `unknown unit "e9"`},
		{"10XB", 0, `unknown unit "XB"`},
		{"10M", 0, `"M" is ambiguous: write MB (powers of 1000) or MiB`},
		{"10g", 0, `"g" is ambiguous`},
		{"10MB/s", 0, "a rate where a size belongs"},
	} {
		got, err := ParseSize(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error saying %q", tc.in, got, err, tc.err)
		case tc.err != "" && strings.Contains(err.Error(), "unknown unit") && !strings.Contains(err.Error(), "such as 50GiB"):
			t.Errorf("ParseSize(%q) error %q gives no example", tc.in, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"10MB/s": 10_000_000, "2MiB/s": 2 << 20, "1000": 1000, "5 kib/S": 5120, "0/s": 0} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseRate("10M/s"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ParseRate(10M/s) = %v", err)
	}
}

func TestFormatBytesAndSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 12 << 20: "12.0 MiB", 256<<20 + 1<<19: "256.5 MiB", math.MaxUint64: "16.0 EiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 50 << 30: "50GiB", 10_000_000: "10MB", 1000: "1kB", 1500: "1500", 3 << 29: "1536MiB"} {
		got := FormatSize(n)
		if got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(got); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, got, back, err)
		}
	}
}

// FuzzParseSize: any text either parses to a non-negative count or is an
// error that gives an example; a parsed count printed by FormatSize parses
// back to itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "50GiB", "10MB/s", "1.5 gb", "-1", "1e9", "9223372036854775807", ".", "10M", "\x00", "1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (int64, error){ParseSize, ParseRate} {
			n, err := parse(s)
			if err != nil {
				if n != 0 || err.Error() == "" {
					t.Fatalf("parse(%q) = %d, %q", s, n, err)
				}
				continue
			}
			if n < 0 {
				t.Fatalf("parse(%q) = %d, negative", s, n)
			}
			if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
				t.Fatalf("parse(%q) = %d, but FormatSize gives %q which parses as %d, %v", s, n, FormatSize(n), back, err)
			}
		}
	})
}
