package web

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCIDPath(t *testing.T) {
	const c = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	for _, tc := range []struct {
		in, path string
		ok       bool
	}{
		{c, "", true},
		{"/" + c, "", true},
		{c + "/", "", true},
		{c + "/a/b", "a/b", true},
		{c + "//a///b/", "a/b", true},
		{"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n/x", "x", true},
		{c + "/a/../b", "", false},
		{c + "/./b", "", false},
		{"", "", false},
		{"not-a-cid/x", "", false},
		{c + "/" + strings.Repeat("a", maxPathLen+1), "", false},
	} {
		got, p, err := parseCIDPath(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseCIDPath(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("parseCIDPath(%q) error %v is not ErrBadRequest", tc.in, err)
			}
			continue
		}
		if p != tc.path || !got.Defined() {
			t.Errorf("parseCIDPath(%q) = %s, %q; want path %q", tc.in, got, p, tc.path)
		}
	}
}

// FuzzParseCIDPath checks that whatever parses yields a clean path and a
// CID that round-trips, and that parsing is idempotent.
func FuzzParseCIDPath(f *testing.F) {
	for _, s := range []string{
		"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku/a/b",
		"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",
		"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi//x/../y",
		"", "/", "z", "b", "f01701220", "Qm", "bafy/.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, p, err := parseCIDPath(s)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if !c.Defined() {
			t.Fatal("undefined CID without error")
		}
		if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
			t.Fatalf("path %q is not clean", p)
		}
		for seg := range strings.SplitSeq(p, "/") {
			if p != "" && (seg == "." || seg == ".." || seg == "") {
				t.Fatalf("path %q has segment %q", p, seg)
			}
		}
		again := c.String()
		if p != "" {
			again += "/" + p
		}
		c2, p2, err := parseCIDPath(again)
		if err != nil || !c2.Equals(c) || p2 != p {
			t.Fatalf("reparse of %q = %s %q %v", again, c2, p2, err)
		}
	})
}
