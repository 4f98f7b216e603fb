package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
)

// TestDaemonSizeFlags: --capacity and --upload-limit take human sizes and
// rates into the config; absent, they leave the config's values alone.
func TestDaemonSizeFlags(t *testing.T) {
	parse := func(args ...string) node.Config {
		t.Helper()
		f := &daemonFlags{}
		cmd := &cobra.Command{}
		f.register(cmd)
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatalf("parsing %q: %v", args, err)
		}
		cfg := node.DefaultConfig("")
		cfg.Store.CapacityBytes, cfg.Transfer.UploadLimit = 123, 456 // as if from config.toml
		f.apply(&cfg)
		return cfg
	}
	cfg := parse("--capacity", "50GiB", "--upload-limit", "10MB/s")
	if cfg.Store.CapacityBytes != 50<<30 || cfg.Transfer.UploadLimit != 10_000_000 {
		t.Fatalf("capacity %d, upload limit %d", cfg.Store.CapacityBytes, cfg.Transfer.UploadLimit)
	}
	cfg = parse("--capacity=1048576", "--upload-limit=0")
	if cfg.Store.CapacityBytes != 1<<20 || cfg.Transfer.UploadLimit != 0 {
		t.Fatalf("plain bytes: capacity %d, upload limit %d", cfg.Store.CapacityBytes, cfg.Transfer.UploadLimit)
	}
	cfg = parse()
	if cfg.Store.CapacityBytes != 123 || cfg.Transfer.UploadLimit != 456 {
		t.Fatalf("without flags the config's values must stay: %d, %d", cfg.Store.CapacityBytes, cfg.Transfer.UploadLimit)
	}
}

// TestDaemonSizeFlagErrors: a bad size names the flag and the value and
// gives an example, before anything is written into the home.
func TestDaemonSizeFlagErrors(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	for _, tc := range []struct{ flag, value, want string }{
		{"--capacity", "10XB", `invalid argument "10XB" for "--capacity" flag: unknown unit "XB"`},
		{"--capacity", "5GiB/s", "drop the /s, such as 50GiB"},
		{"--upload-limit", "10M/s", `invalid argument "10M/s" for "--upload-limit" flag: unit "M" is ambiguous: write MB`},
		{"--upload-limit", "-1", "a negative size: use 0 for unlimited"},
	} {
		code, _, errOut := shoal(t, "daemon", "--home", home, tc.flag, tc.value)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("daemon %s %s: exit %d, stderr %q; want %q", tc.flag, tc.value, code, errOut, tc.want)
		}
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatalf("a refused flag left the home behind: %v", err)
	}
	help := mustShoal(t, "daemon", "--help")
	for _, want := range []string{"--capacity size", "such as 50GiB", "--upload-limit rate", "such as 10MB/s"} {
		if !strings.Contains(help, want) {
			t.Errorf("daemon --help lacks %q", want)
		}
	}
}
