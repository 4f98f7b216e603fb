package kuborpc

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
)

// args are a request's positional arguments (every ?arg=) and options.
type args struct {
	q url.Values
}

func argsOf(r *http.Request) args { return args{q: r.URL.Query()} }

// need returns the n first arguments, or Kubo's client error naming the
// first missing one.
func (a args) need(names ...string) ([]string, error) {
	got := a.q["arg"]
	if len(got) < len(names) {
		return nil, argError{fmt.Sprintf("argument %q is required", names[len(got)])}
	}
	return got, nil
}

// boolOpt reads a boolean option, def when absent.
func (a args) boolOpt(name string, def bool) (bool, error) {
	v, ok := a.q[name]
	if !ok || len(v) == 0 {
		return def, nil
	}
	if v[0] == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v[0])
	if err != nil {
		return def, badRequest("option %q: %q is not a boolean", name, v[0])
	}
	return b, nil
}

func (a args) str(name string) string {
	if v := a.q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ipfsPath splits "/ipfs/CID/a/b", "CID/a/b" or "CID" into its root and
// the path below it. An /ipns/ name is refused: shoal has no IPNS.
func ipfsPath(s string) (cid.Cid, string, error) {
	p := s
	if strings.HasPrefix(p, "/ipns/") {
		return cid.Undef, "", errNoIPNS(s)
	}
	p = strings.TrimPrefix(p, "/ipfs/")
	if strings.HasPrefix(p, "/") {
		return cid.Undef, "", badRequest("invalid path %q: use /ipfs/CID[/path] or CID[/path]", s)
	}
	root, rest, _ := strings.Cut(p, "/")
	c, err := cid.Decode(root)
	if err != nil {
		return cid.Undef, "", badRequest("invalid path %q: %v", s, err)
	}
	return c, strings.Trim(rest, "/"), nil
}

func errNoIPNS(name string) error {
	return badRequest("cannot resolve %s: shoal has no IPNS; name content by its /ipfs/CID", name)
}

// argError is a request go-ipfs-cmds refuses before running the command
// (a required argument missing): Kubo answers it as plain text, 400.
type argError struct{ msg string }

func (e argError) Error() string { return e.msg }
