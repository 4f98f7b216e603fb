package kuborpc

import (
	"strings"
	"testing"
)

// FuzzIPFSPath: the path argument of cat, pin, resolve and block commands
// never panics, and what it accepts is a CID with a clean path below it.
func FuzzIPFSPath(f *testing.F) {
	for _, s := range []string{"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy/a/b/",
		"/ipns/k51", "/ipfs//x", "QmQPeNsJPyVWPFDVHb9Yg4uMQ7L8XZ2n6Ta5WDKYKXkVaF", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, rest, err := ipfsPath(s)
		if err != nil {
			return
		}
		if !c.Defined() || strings.HasPrefix(rest, "/") || strings.HasSuffix(rest, "/") {
			t.Fatalf("ipfsPath(%q) = %v, %q", s, c, rest)
		}
	})
}
