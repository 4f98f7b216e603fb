package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalnet/shoal/node"
)

// Bad user input: every case exits non-zero with a message that names
// what was wrong and says what to do, and leaves nothing behind.
// (-o onto an existing file is in TestCLIShareFetchFile; tar entries named
// .. or absolute, and escaping symlinks, in TestExtractTarAtomic.)

// TestBadInputCIDs: malformed CIDs are refused by every command that takes
// one, before anything is written.
func TestBadInputCIDs(t *testing.T) {
	d := startTestDaemon(t, "")
	out := filepath.Join(t.TempDir(), "out")
	for _, bad := range []string{
		"notacid",
		"bafybeihudjctj6lhlmv7vbrq4wsmgejbrddqdm", // truncated
		"QmTooShort",
		"bafy!!",
		"bafkqaaa/../../etc",
		"",
	} {
		cmds := [][]string{{"fetch", bad, "-o", out}, {"pin", bad}, {"unpin", bad}, {"stat", bad}}
		switch bad {
		case "":
			// pin/unpin "" reach the daemon as /pin/ and get "no API route":
			// a failure, but not a helpful one (reported; commands.go).
			cmds = [][]string{{"fetch", bad, "-o", out}, {"stat", bad}}
		case "bafkqaaa/../../etc":
			// stat takes CID/path and sends the dots on, so the daemon
			// answers "no API route /api/v1/etc" (reported; commands.go).
			cmds = cmds[:3]
		}
		for _, args := range cmds {
			code, stdout, stderr := shoal(t, append(args, "--api", d.url)...)
			if code == 0 || stdout != "" {
				t.Errorf("shoal %q: exit %d, stdout %q; want a failure", args, code, stdout)
				continue
			}
			if bad == "bafkqaaa/../../etc" && args[0] == "fetch" {
				// fetch takes CID/path: the CID is valid, the path is refused.
				if !strings.Contains(stderr, `path "`+bad+`" has a ".." segment`) {
					t.Errorf("shoal %q: stderr %q; want the path refused for its \"..\"", args, stderr)
				}
				continue
			}
			if bad != "" && (!strings.Contains(stderr, `"`+bad+`" is not a valid CID`) || !strings.Contains(stderr, "copied whole")) {
				t.Errorf("shoal %q: stderr %q; want it to quote the CID and say to check it was copied whole", args, stderr)
			}
			if bad == "" && !strings.Contains(stderr, "CID") {
				t.Errorf("shoal %q: stderr %q; want it to ask for a CID", args, stderr)
			}
		}
	}
	if _, err := os.Lstat(out); err == nil {
		t.Fatalf("a refused fetch created %s", out)
	}
}

// TestBadInputPaths: missing and unreadable paths to share or hash, and a
// fetch target in a directory that does not exist.
func TestBadInputPaths(t *testing.T) {
	d := startTestDaemon(t, "")
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "file")
	for _, args := range [][]string{{"share", missing, "--api", d.url}, {"cid", missing}} {
		code, _, stderr := shoal(t, args...)
		if code != 1 || !strings.Contains(stderr, "cannot read "+missing) || !strings.Contains(stderr, "check the path") {
			t.Errorf("shoal %q: exit %d, stderr %q; want exit 1 naming the path and what to check", args, code, stderr)
		}
	}

	src := filepath.Join(dir, "a.bin")
	if err := os.WriteFile(src, randomBytes(300<<10, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	root := lastLine(mustShoal(t, "share", src, "--api", d.url))
	target := filepath.Join(dir, "nodir", "out.bin")
	code, _, stderr := shoal(t, "fetch", root, "-o", target, "--api", d.url)
	if code != 1 || !strings.Contains(stderr, filepath.Join(dir, "nodir")) {
		t.Errorf("fetch into a missing directory: exit %d, stderr %q; want exit 1 naming the directory", code, stderr)
	}

	if os.Geteuid() == 0 {
		t.Log("running as root, which reads any file: the unreadable-file case is skipped")
		return
	}
	locked := filepath.Join(dir, "locked.bin")
	if err := os.WriteFile(locked, []byte("secret"), 0o000); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"share", locked, "--api", d.url}, {"cid", locked}} {
		code, _, stderr := shoal(t, args...)
		if code != 1 || !strings.Contains(stderr, locked) || !strings.Contains(stderr, "permission") {
			t.Errorf("shoal %q: exit %d, stderr %q; want exit 1 naming the file and the permission problem", args, code, stderr)
		}
	}
}

// TestBadInputDiskFull: fetching 4 MiB onto a 2 MiB tmpfs fails with a
// message that says the disk is full, and leaves nothing under the final
// name and no temporary file behind. Needs permission to mount tmpfs.
func TestBadInputDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s); the disk-full case needs root or CAP_SYS_ADMIN", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	d := startTestDaemon(t, "")
	src := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(src, randomBytes(4<<20, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	root := lastLine(mustShoal(t, "share", src, "--api", d.url))
	target := filepath.Join(mnt, "big.bin")
	code, _, stderr := shoal(t, "fetch", root, "-o", target, "--api", d.url)
	if code != 1 || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, target) {
		t.Fatalf("fetch onto a full disk: exit %d, stderr %q; want exit 1 naming the target and the full disk", code, stderr)
	}
	left, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("a failed fetch left %v on the full disk; want nothing", left)
	}
}

// TestBadInputConfigFile: a daemon whose config file has an error refuses
// to start, naming the file, the line or setting, and what is wrong.
func TestBadInputConfigFile(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"syntax", "[network]\nmdns = yes\n", "line 2"},
		{"unknown key", "[network]\nmnds = true\n", "network.mnds"},
		{"bad value", "[store]\ncapacity_bytes = \"lots\"\n", "capacity_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.WriteFile(filepath.Join(home, node.ConfigFile), []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := shoal(t, "daemon", "--home", home, "--no-mdns",
				"--listen", "/ip4/127.0.0.1/tcp/0", "--api-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0")
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("daemon with a bad config: exit %d, stderr %q; want a failure mentioning %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(home, APIFile)); err == nil {
				t.Fatal("a daemon that refused its config left an api file")
			}
		})
	}
}
