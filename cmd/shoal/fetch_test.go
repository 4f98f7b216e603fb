package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/node"
)

// nobodysCID is a valid CID no node holds.
func nobodysCID(t *testing.T, seed string) string {
	t.Helper()
	h, err := mh.Sum([]byte("content nobody shares: "+seed), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h).String()
}

// TestCLIFetchSearchesThenOneSentence: with no provider anywhere, fetch
// says it is searching, keeps at it until --timeout, then fails with one
// sentence naming the CID once, how long it searched and what to try.
func TestCLIFetchSearchesThenOneSentence(t *testing.T) {
	d := startTestDaemon(t, "")
	c := nobodysCID(t, "search")
	code, _, errOut := shoal(t, "fetch", "--api", d.url, "--timeout", "3s", c, "-o", filepath.Join(t.TempDir(), "out"))
	if code == 0 {
		t.Fatalf("fetch of content nobody has succeeded; stderr %q", errOut)
	}
	if !strings.Contains(errOut, "searching for providers… 0 found, 0 s") {
		t.Errorf("stderr does not show the searching line: %q", errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := lines[len(lines)-1]
	for _, part := range []string{"no provider of " + c + " found in 3s", "shoal peers", "--bootstrap"} {
		if !strings.Contains(last, part) {
			t.Errorf("error %q lacks %q", last, part)
		}
	}
	if n := strings.Count(last, c); n != 1 {
		t.Errorf("error names the CID %d times, want once: %q", n, last)
	}
}

// TestCLIFetchPinsGatewayCaches: what `shoal fetch` brought is pinned and
// survives GC; what a gateway reader pulled is cache and does not.
func TestCLIFetchPinsGatewayCaches(t *testing.T) {
	a, b := connected(t)
	dir := t.TempDir()
	var cids []string
	for i, name := range []string{"asked.bin", "browsed.bin"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, randomBytes(300<<10, uint64(10+i)), 0o644); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, lastLine(mustShoal(t, "share", "--api", a.url, p)))
	}
	mustShoal(t, "fetch", "--api", b.url, cids[0], "-o", filepath.Join(dir, "got.bin"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	browsed, _ := cid.Decode(cids[1])
	f, err := b.n.Open(ctx, browsed) // what the gateway does for GET /ipfs/CID
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitTransfersDone(t, b.n)

	mustShoal(t, "gc", "--api", b.url)
	var ls []node.RootInfo
	if err := json.Unmarshal([]byte(mustShoal(t, "ls", "--api", b.url, "--json")), &ls); err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for _, r := range ls {
		held[r.CID] = r.Pinned
	}
	if pinned, ok := held[cids[0]]; !ok || !pinned {
		t.Errorf("after gc, the root shoal fetch brought is held=%v pinned=%v; want pinned and kept (ls %+v)", ok, pinned, ls)
	}
	if _, ok := held[cids[1]]; ok {
		t.Errorf("after gc, the gateway-fetched root is still listed; want it collected as cache (ls %+v)", ls)
	}
}

func waitTransfersDone(t *testing.T, n *node.Node) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		running := 0
		for _, tr := range n.Transfers() {
			if tr.State == node.TransferRunning {
				running++
			}
		}
		if running == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("transfers still running: %+v", n.Transfers())
}

// TestCLIJSONErrors: under --json an error is {"error", "code"} on stderr,
// nothing on stdout, and a non-zero exit, for any command.
func TestCLIJSONErrors(t *testing.T) {
	d := startTestDaemon(t, "")
	for _, tc := range []struct {
		args []string
		code string
		says string
	}{
		{[]string{"id", "--api", "http://127.0.0.1:1"}, "no_daemon", "no shoal daemon"},
		{[]string{"fetch", "--api", d.url, "not-a-cid"}, "bad_request", "not-a-cid"},
		{[]string{"fetch", "--api", d.url, "--timeout", "1s", nobodysCID(t, "json")}, "error", "no provider of"},
		{[]string{"unpin", "--api", d.url, "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}, "", "not pinned"},
	} {
		code, out, errOut := shoal(t, append([]string{"--json"}, tc.args...)...)
		var body map[string]string
		if err := json.Unmarshal([]byte(errOut), &body); err != nil {
			t.Errorf("shoal --json %s: stderr is not JSON (%v): %q", strings.Join(tc.args, " "), err, errOut)
			continue
		}
		if code == 0 || out != "" || !strings.Contains(body["error"], tc.says) || body["code"] == "" || (tc.code != "" && body["code"] != tc.code) || len(body) != 2 {
			t.Errorf("shoal --json %s: exit %d, stdout %q, stderr %v; want non-zero, nothing on stdout, error saying %q, code %q",
				strings.Join(tc.args, " "), code, out, body, tc.says, tc.code)
		}
	}
}

// TestCLIFetchNamesAndPaths: fetch takes CID/path and /ipfs/CID/path,
// writes to the content's name without -o, and never overwrites a file
// silently.
func TestCLIFetchNamesAndPaths(t *testing.T) {
	a, b := connected(t)
	tree, files := writeTestTree(t)
	root := lastLine(mustShoal(t, "share", "--api", a.url, tree))
	work := t.TempDir()
	t.Chdir(work)

	mustShoal(t, "fetch", "--api", b.url, root+"/sub/deep/x.json")
	if got, err := os.ReadFile(filepath.Join(work, "x.json")); err != nil || !bytes.Equal(got, files["sub/deep/x.json"]) {
		t.Fatalf("fetch CID/sub/deep/x.json without -o: ./x.json = %q, %v", got, err)
	}
	mustShoal(t, "fetch", "--api", b.url, "/ipfs/"+root+"/sub/big.bin", "-o", "big")
	if got, err := os.ReadFile(filepath.Join(work, "big")); err != nil || !bytes.Equal(got, files["sub/big.bin"]) {
		t.Fatalf("fetch /ipfs/CID/sub/big.bin -o big: %d bytes, %v", len(got), err)
	}

	// The same name again: refused, naming the file and -o.
	if err := os.WriteFile("x.json", []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := shoal(t, "fetch", "--api", b.url, root+"/sub/deep/x.json")
	if code == 0 || !strings.Contains(errOut, "x.json already exists") || !strings.Contains(errOut, "-o") {
		t.Errorf("fetch onto an existing ./x.json: exit %d, stderr %q", code, errOut)
	}
	if got, _ := os.ReadFile("x.json"); string(got) != "mine" {
		t.Errorf("existing x.json was overwritten: %q", got)
	}

	// A plain CID: the name the fetching daemon knows, else the CID.
	// Names do not travel between nodes (Bitswap has no place for them),
	// so b, which did not share the tree, writes it under its CID.
	var st struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(mustShoal(t, "stat", "--api", b.url, "--json", root)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Name != "" {
		t.Fatalf("b knows the name %q of content it did not share", st.Name)
	}
	want := root
	mustShoal(t, "fetch", "--api", b.url, root)
	if _, err := os.ReadFile(filepath.Join(work, want, "a.txt")); err != nil {
		t.Errorf("fetch %s without -o: want the tree under ./%s: %v", root, want, err)
	}
	if code, _, errOut := shoal(t, "fetch", "--api", b.url, root); code == 0 || !strings.Contains(errOut, want+" already exists") {
		t.Errorf("second fetch of %s: exit %d, stderr %q; want refused naming ./%s", root, code, errOut, want)
	}
	// The sharing daemon knows the name: a fetch there writes ./tree.
	name := filepath.Base(tree)
	mustShoal(t, "fetch", "--api", a.url, root)
	if _, err := os.ReadFile(filepath.Join(work, name, "a.txt")); err != nil {
		t.Errorf("fetch %s through the daemon that shared it as %q: %v", root, name, err)
	}
}

// TestContentName: the name fetch writes to, and the names it will not use.
func TestContentName(t *testing.T) {
	for _, tc := range []struct{ name, target, want string }{
		{"photos", "bafyroot", "photos"},
		{"", "bafyroot", "bafyroot"},
		{"", "bafyroot/sub/x.json", "x.json"},
		{"report.pdf", "bafyroot/sub/x.json", "report.pdf"},
		{"../../etc/passwd", "bafyroot", "bafyroot"},
		{"..", "bafyroot/a/..", "bafyroot"},
		{"a/b", "bafyroot/c", "c"},
	} {
		if got := contentName(tc.name, tc.target, "bafyroot"); got != tc.want {
			t.Errorf("contentName(%q, %q) = %q, want %q", tc.name, tc.target, got, tc.want)
		}
	}
}

// TestCLIFetchInterruptCancels: SIGINT to a running `shoal fetch` process
// exits 130 and cancels the daemon's transfer; with --detach fetch returns
// at once with the transfer's ID and the transfer keeps running.
func TestCLIFetchInterruptCancels(t *testing.T) {
	bin := shoalBinary(t)
	d := startTestDaemon(t, "")
	c := nobodysCID(t, "sigint")
	cmd := exec.Command(bin, "fetch", "--api", d.url, "--timeout", "0", c, "-o", filepath.Join(t.TempDir(), "out"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var rest bytes.Buffer
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "searching for providers") {
			break
		}
		rest.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go io.Copy(&rest, stderr)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("shoal fetch after SIGINT: %v, want exit status 130; stderr %q", err, rest.String())
	}
	ts := d.n.Transfers()
	if len(ts) != 1 || ts[0].CID != c || ts[0].State != node.TransferFailed || !strings.Contains(ts[0].Error, "cancelled") {
		t.Fatalf("daemon transfers after SIGINT: %+v; want the fetch failed as cancelled", ts)
	}

	out := mustShoal(t, "fetch", "--api", d.url, "--detach", "--timeout", "0", nobodysCID(t, "detach"))
	ts = d.n.Transfers()
	if len(ts) != 2 || !strings.Contains(out, "transfer "+ts[0].ID+" ") || ts[0].State != node.TransferRunning {
		t.Fatalf("fetch --detach printed %q; transfers %+v; want its ID printed and the transfer running", out, ts)
	}
}
