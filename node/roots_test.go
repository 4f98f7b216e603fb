package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestRootNamesPersist: roots.json written before names existed still
// loads (its roots without names); a name survives a reload; recording
// the root again without a name (a fetch, a pin) keeps it; a new name
// replaces it.
func TestRootNamesPersist(t *testing.T) {
	home := t.TempDir()
	const oldKey = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	old := `{"` + oldKey + `": {"size": 5, "added": "2026-01-02T03:04:05Z"}}`
	if err := os.WriteFile(filepath.Join(home, rootsFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := loadRoots(home)
	if err != nil {
		t.Fatalf("loading a roots.json without names: %v", err)
	}
	oc := cid.MustParse(oldKey)
	if rec, ok := r.get(oc); !ok || rec.Size != 5 || rec.Name != "" {
		t.Fatalf("old record = %+v, %v", rec, ok)
	}

	if err := r.addNamed(oc, 5, "hello.txt"); err != nil {
		t.Fatal(err)
	}
	if err := r.add(oc, 6); err != nil { // a fetch records the root, unnamed
		t.Fatal(err)
	}
	r, err = loadRoots(home)
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := r.get(oc); rec.Name != "hello.txt" || rec.Size != 6 {
		t.Fatalf("after reload: %+v, want name hello.txt and size 6", rec)
	}
	if err := r.addNamed(oc, 6, "renamed.txt"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := r.get(oc); rec.Name != "renamed.txt" {
		t.Fatalf("after sharing again under a new name: %+v", rec)
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name, why string // why "" = accepted
	}{
		{"", ""},
		{"data.tar", ""},
		{"résumé final (2).pdf", ""},
		{`back\slash`, ""},
		{"a/b", `contains "/"`},
		{".", "is not a name"},
		{"..", "is not a name"},
		{"x\x00y", "control character"},
		{"line\nbreak", "control character"},
		{"\xff\xfe", "not valid UTF-8"},
		{strings.Repeat("n", 256), "is 256 bytes long, over 255"},
		{strings.Repeat("n", 255), ""},
	} {
		err := CheckName(tc.name)
		if tc.why == "" {
			if err != nil {
				t.Errorf("CheckName(%q) = %v, want nil", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "base name") {
			t.Errorf("CheckName(%q) = %v, want ErrBadName saying %q and what to give", tc.name, err, tc.why)
		}
	}
}
