package content

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

type dirVector struct {
	Name    string `json:"name"`
	CID     string `json:"cid"`
	Entries []struct {
		Path    string `json:"path"`
		Type    string `json:"type"`
		Text    string `json:"text"`
		Pattern int    `json:"pattern"`
		Target  string `json:"target"`
	} `json:"entries"`
	Generate *struct {
		Count  int    `json:"count"`
		Prefix string `json:"prefix"`
		Pad    int    `json:"pad"`
	} `json:"generate"`
}

// vectorEntry is an entry of a vector with its content.
type vectorEntry struct {
	path, kind, target string
	content            []byte
}

func (v *dirVector) entries() []vectorEntry {
	var out []vectorEntry
	for _, e := range v.Entries {
		ve := vectorEntry{path: e.Path, kind: e.Type, target: e.Target, content: []byte(e.Text)}
		if e.Pattern > 0 {
			ve.content = make([]byte, e.Pattern)
			for i := range ve.content {
				ve.content[i] = byte(i % 251)
			}
		}
		out = append(out, ve)
	}
	if g := v.Generate; g != nil {
		for i := range g.Count {
			name := fmt.Sprintf("%s%05d%s", g.Prefix, i, strings.Repeat("x", g.Pad))
			out = append(out, vectorEntry{path: name, kind: "file", content: fmt.Appendf(nil, "%d", i)})
		}
	}
	return out
}

func TestDirVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/dirs.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []dirVector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			store := newDTStore()
			b := NewDirBuilder(store, ImportOptions{})
			for _, e := range v.entries() {
				var err error
				switch e.kind {
				case "file":
					_, err = b.AddFile(ctx, e.path, bytes.NewReader(e.content))
				case "dir":
					err = b.AddDir(e.path)
				case "symlink":
					err = b.AddSymlink(ctx, e.path, e.target)
				default:
					t.Fatalf("unknown type %q", e.kind)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			res, err := b.Finish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.CID.String(); got != v.CID {
				t.Errorf("root %s, vector says %s", got, v.CID)
			}
			if v.Generate != nil {
				if typ := rootType(t, store, res.CID); typ != THAMTShard || hamtDepth(t, store, res.CID) < 2 {
					t.Errorf("generated vector root is a %s, want a HAMT with sub-shards", typ)
				}
			}
			// The vector itself is Kubo's answer: recompute it with boxo.
			want, _ := dtBoxoTree(t, v.dtEntries(t))
			if want.Cid().String() != v.CID {
				t.Errorf("boxo gives %s, vector says %s", want.Cid(), v.CID)
			}
		})
	}
}

// dtEntries turns the vector into oracle entries; file contents are
// carried through a side table keyed by seed.
func (v *dirVector) dtEntries(t testing.TB) []dtEntry {
	t.Helper()
	var out []dtEntry
	for _, e := range v.entries() {
		switch e.kind {
		case "file":
			out = append(out, dtEntry{path: e.path, kind: TFile, data: e.content})
		case "dir":
			out = append(out, dtEntry{path: e.path, kind: TDirectory})
		case "symlink":
			out = append(out, dtEntry{path: e.path, kind: TSymlink, target: e.target})
		}
	}
	return out
}
