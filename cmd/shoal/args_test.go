package main

import (
	"strings"
	"testing"
)

func TestCIDArguments(t *testing.T) {
	const c = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	for _, tc := range []struct {
		in, want, errHas string
	}{
		{in: c, want: c},
		{in: " " + c + " ", want: c},
		{in: c + "/docs/a.txt", want: c + "/docs/a.txt"},
		{in: "/ipfs/" + c + "/x/", want: c + "/x"},
		{in: "", errHas: "no CID given"},
		{in: c + "/../../etc", errHas: `".." segment`},
		{in: c + "/a/./b", errHas: `"." segment`},
		{in: c + "/a//b", errHas: `"" segment`},
	} {
		got, err := cidPathArg(tc.in)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("cidPathArg(%q) = %q, %v; want error with %q", tc.in, got, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cidPathArg(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseCIDArg("  "); err == nil || !strings.Contains(err.Error(), "no CID given") {
		t.Errorf("parseCIDArg of blanks = %v, want 'no CID given'", err)
	}
}
