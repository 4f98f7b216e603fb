package web

import (
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
)

// maxPathLen bounds the path a request may name below a root CID.
const maxPathLen = 4096

// parseCID decodes a CID from a URL, with an error that says what to do.
func parseCID(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, fmt.Errorf("%w: missing CID: name the content as a CID such as bafkrei… or Qm…", ErrBadRequest)
	}
	c, err := cid.Decode(s)
	if err != nil {
		shown := s
		if len(shown) > 80 {
			shown = shown[:80] + "…"
		}
		return cid.Undef, fmt.Errorf("%w: %q is not a valid CID (%v): check that it was copied whole", ErrBadRequest, shown, err)
	}
	return c, nil
}

// parseCIDPath splits "<cid>[/name/name…]" into the CID and a clean
// slash-separated path ("" for the root). Empty segments (doubled or
// trailing slashes) are dropped; "." and ".." are refused, as UnixFS names
// never are either.
func parseCIDPath(s string) (cid.Cid, string, error) {
	s = strings.TrimPrefix(s, "/")
	first, rest, _ := strings.Cut(s, "/")
	c, err := parseCID(first)
	if err != nil {
		return cid.Undef, "", err
	}
	if len(rest) > maxPathLen {
		return cid.Undef, "", fmt.Errorf("%w: path below %s is longer than %d bytes", ErrBadRequest, c, maxPathLen)
	}
	var segs []string
	for seg := range strings.SplitSeq(rest, "/") {
		switch seg {
		case "":
			continue
		case ".", "..":
			return cid.Undef, "", fmt.Errorf("%w: path %q below %s contains %q: name entries only", ErrBadRequest, rest, c, seg)
		}
		if strings.ContainsRune(seg, 0) {
			return cid.Undef, "", fmt.Errorf("%w: path below %s contains a NUL byte", ErrBadRequest, c)
		}
		segs = append(segs, seg)
	}
	return c, strings.Join(segs, "/"), nil
}
