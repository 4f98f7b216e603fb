package node

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Sizes as people write them, for flags and the config file, and as shoal
// prints them. One implementation for the CLI, the gateway's listings and
// the config, so a size reads the same everywhere.

// sizeUnits maps a lower-cased unit to its bytes: SI prefixes are powers
// of 1000, IEC prefixes powers of 1024.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "eb": 1e18,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50, "eib": 1 << 60,
}

// sizeHint is what every size error ends with.
const sizeHint = "write bytes, or a number with B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), such as 50GiB"

// ParseSize reads a byte count such as "1048576", "1.5GB", "50GiB" or
// "64 mib": a non-negative decimal number and an optional unit, SI (kB,
// MB, GB … = 1000^n) or IEC (KiB, MiB, GiB … = 1024^n), in any case.
// Fractions of a byte are dropped. Its errors say what is wrong and give
// an example, without repeating s: the caller names the flag or setting
// and its value.
func ParseSize(s string) (int64, error) {
	return parseBytes(s, false)
}

// ParseRate is ParseSize for bytes per second: the same, with an optional
// "/s" ("10MB/s", "2MiB/s", "1000000").
func ParseRate(s string) (int64, error) {
	return parseBytes(s, true)
}

func parseBytes(s string, rate bool) (int64, error) {
	t := strings.TrimSpace(s)
	if rate {
		t = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "/S"))
	} else if strings.HasSuffix(t, "/s") || strings.HasSuffix(t, "/S") {
		return 0, errors.New("a rate where a size belongs: drop the /s, such as 50GiB")
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || num == "." || strings.Count(num, ".") > 1 {
		if strings.HasPrefix(t, "-") {
			return 0, errors.New("a negative size: use 0 for unlimited")
		}
		return 0, fmt.Errorf("not a number: %s", sizeHint)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		if len(unit) == 1 && strings.Contains("kmgtpe", unit) {
			return 0, fmt.Errorf("unit %q is ambiguous: write %sB (powers of 1000) or %siB (powers of 1024)", t[i:], strings.ToUpper(unit), strings.ToUpper(unit))
		}
		return 0, fmt.Errorf("unknown unit %q: %s", t[i:], sizeHint)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("not a number: %s", sizeHint)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom()) // floor: r is not negative
	if !n.IsInt64() {
		return 0, fmt.Errorf("larger than %s, the most shoal can count", FormatBytes(math.MaxInt64))
	}
	return n.Int64(), nil
}

// FormatBytes prints n in IEC units with one decimal ("12.0 MiB"), or as
// bytes below 1 KiB ("512 B").
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// FormatSize prints a size for a flag's or setting's value: "0" stays
// "0", whole IEC or SI multiples keep their unit ("50GiB", "10MB"), and
// anything else is plain bytes, so what is printed parses back exactly.
func FormatSize(n int64) string {
	if n <= 0 {
		return fmt.Sprint(n)
	}
	for _, u := range []struct {
		name string
		mult int64
	}{{"EiB", 1 << 60}, {"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"EB", 1e18}, {"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.name)
		}
	}
	return fmt.Sprint(n)
}
