package transfer

import (
	"bytes"
	"io"
	"testing"
)

// TestReadAhead: a read from the start calls fetch once; reads that start
// elsewhere (a Range) call nothing; seeking back to 0 does not call again.
func TestReadAhead(t *testing.T) {
	data := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name  string
		steps func(t *testing.T, a *ReadAhead)
		want  int
		bytes string
	}{
		{"whole file", func(t *testing.T, a *ReadAhead) {}, 1, string(data)},
		{"range from 10", func(t *testing.T, a *ReadAhead) {
			if _, err := a.Seek(10, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}, 0, "abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			a := NewReadAhead(bytes.NewReader(data), func() { calls++ })
			tc.steps(t, a)
			got, err := io.ReadAll(a)
			if err != nil || string(got) != tc.bytes || calls != tc.want {
				t.Fatalf("read %q, %v with %d fetches; want %q with %d", got, err, calls, tc.bytes, tc.want)
			}
			// Back to the start: the policy fires at most once per reader.
			if _, err := a.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(a); err != nil {
				t.Fatal(err)
			}
			if want := 1; calls != want {
				t.Errorf("after reading again from 0: %d fetches; want %d", calls, want)
			}
		})
	}
}
