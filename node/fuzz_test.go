package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig: any config file either loads into a configuration that
// validates, or fails with ErrConfig naming the file; it never panics.
func FuzzLoadConfig(f *testing.F) {
	home := f.TempDir()
	if err := WriteConfig(DefaultConfig(home)); err != nil {
		f.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(home, ConfigFile))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(written),
		"",
		"[network]\nmdns = yes\n",
		"[network]\nmnds = true\n",
		"[network]\nlisten = [\"tcp:4040\"]\n",
		"[api]\naddr = \"0.0.0.0:5080\"\n",
		"[store]\ncapacity_bytes = -1\n",
		"[resources]\nmax_memory_bytes = 1\nconns_low = 5\nconns_high = 1\n",
		"[[network]]\n",
		"a = 1\na = 2\n",
		"[transfer]\nupload_limit = 1e400\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		home := t.TempDir()
		path := filepath.Join(home, ConfigFile)
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(home)
		if err != nil {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadConfig error %q: want ErrConfig naming %s", err, path)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted a config that does not validate: %v", err)
		}
		if cfg.Home != home {
			t.Fatalf("loaded config has home %q, want %q", cfg.Home, home)
		}
	})
}

// FuzzLoadRoots: a damaged roots catalogue either loads (keeping only
// valid CIDs) or fails with a message that says to delete it.
func FuzzLoadRoots(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"bafkqaaa": {"size": 0, "added": "2026-11-23T12:00:00Z"}}`,
		`{"notacid": {"size": 5}}`,
		`{"bafkqaaa": {"size": -1}}`,
		`[`,
		`null`,
		`{"bafkqaaa": null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		home := t.TempDir()
		if err := os.WriteFile(filepath.Join(home, rootsFile), body, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := loadRoots(home)
		if err != nil {
			if !strings.Contains(err.Error(), "delete it") {
				t.Fatalf("loadRoots error %q does not say what to do", err)
			}
			return
		}
		for _, c := range r.list() {
			if !c.Defined() {
				t.Fatalf("loadRoots kept an undefined CID")
			}
		}
	})
}
