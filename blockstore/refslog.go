package blockstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The references of a Disk store are an append-only log, "refs" in its
// directory:
//
//	shoal-refs v1
//	+ <key> <size> <offset> <quoted path> [<quoted alt>]   a reference (key as block file names)
//	- <key>                                 the key is no longer a reference
//
// Additions are fsynced before PutRefs indexes them (unless Ref.NoSync
// says the caller syncs later); removals are not (a
// reference that comes back after a crash is hashed when read, so it is
// at worst missing). A line a crash cut short, or one that does not
// parse, is skipped with a warning: losing a reference loses no data,
// the block is fetched again. Open compacts the log when it holds more
// removed records than live ones.
const (
	refsFileName = "refs"
	refsHeader   = "shoal-refs v1"
)

type refsLog struct {
	mu   sync.Mutex
	path string
	f    *os.File // opened for appending on first use
}

func (l *refsLog) open() error {
	if l.f != nil {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
		if _, err := f.WriteString(refsHeader + "\n"); err != nil {
			f.Close()
			return err
		}
	}
	l.f = f
	return nil
}

func (l *refsLog) append(b []byte, durable bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.open(); err != nil {
		return err
	}
	if _, err := l.f.Write(b); err != nil {
		return err
	}
	if durable {
		return l.f.Sync()
	}
	return nil
}

func (l *refsLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func refRecord(buf *bytes.Buffer, key string, r refRec) {
	buf.WriteString("+ ")
	buf.WriteString(keyEncoding.EncodeToString([]byte(key)))
	fmt.Fprintf(buf, " %d %d %s", r.size, r.off, strconv.Quote(r.path))
	if r.alt != "" {
		buf.WriteString(" " + strconv.Quote(r.alt))
	}
	buf.WriteByte('\n')
}

func (d *diskBackend) saveRefs(refs []Ref, durable bool) error {
	var buf bytes.Buffer
	for _, r := range refs {
		refRecord(&buf, string(r.C.Hash()), refRec{path: r.Path, alt: r.Alt, off: r.Offset, size: r.Size})
	}
	return d.refs.append(buf.Bytes(), durable)
}

func (d *diskBackend) dropRefs(keys []string) error {
	var buf bytes.Buffer
	for _, k := range keys {
		buf.WriteString("- " + keyEncoding.EncodeToString([]byte(k)) + "\n")
	}
	return d.refs.append(buf.Bytes(), false)
}

// refRec is one live reference read back from the log.
type refRec struct {
	path, alt string
	off, size int64
}

// loadRefs replays the log and returns the live references by key,
// compacting the log when most of it is dead.
func (d *diskBackend) loadRefs(log *slog.Logger) (map[string]refRec, error) {
	b, err := os.ReadFile(d.refs.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: reading %s: %w", d.refs.path, err)
	}
	live := make(map[string]refRec)
	records := 0
	for i, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[len(line)-1] != '\n' {
			log.Warn("blockstore: ignoring the last line of the references log, cut short by a crash", "path", d.refs.path)
			break
		}
		text := string(line[:len(line)-1])
		if i == 0 {
			if text != refsHeader {
				return nil, fmt.Errorf("blockstore: %s does not start with %q; it is not a shoal references log (move it away to start without references)", d.refs.path, refsHeader)
			}
			continue
		}
		records++
		key, rec, add, err := parseRefLine(text)
		if err != nil {
			log.Warn("blockstore: ignoring a bad line of the references log", "path", d.refs.path, "line", i+1, "err", err)
			continue
		}
		if add {
			live[key] = rec
		} else {
			delete(live, key)
		}
	}
	if records > 2*len(live)+64 {
		if err := d.rewriteRefs(live); err != nil {
			log.Warn("blockstore: cannot compact the references log", "path", d.refs.path, "err", err)
		}
	}
	return live, nil
}

func parseRefLine(text string) (key string, rec refRec, add bool, err error) {
	op, rest, ok := strings.Cut(text, " ")
	if !ok || (op != "+" && op != "-") {
		return "", rec, false, fmt.Errorf("%q is neither an addition nor a removal", text)
	}
	name, rest, _ := strings.Cut(rest, " ")
	raw, err := keyEncoding.DecodeString(name)
	if err != nil || len(raw) == 0 {
		return "", rec, false, fmt.Errorf("%q is not a block key", name)
	}
	if op == "-" {
		return string(raw), rec, false, nil
	}
	sz, rest, _ := strings.Cut(rest, " ")
	off, quoted, _ := strings.Cut(rest, " ")
	if rec.size, err = strconv.ParseInt(sz, 10, 64); err != nil || rec.size <= 0 {
		return "", rec, false, fmt.Errorf("size %q", sz)
	}
	if rec.off, err = strconv.ParseInt(off, 10, 64); err != nil || rec.off < 0 {
		return "", rec, false, fmt.Errorf("offset %q", off)
	}
	q, err := strconv.QuotedPrefix(quoted)
	if err == nil {
		rec.path, err = strconv.Unquote(q)
	}
	if err != nil || rec.path == "" {
		return "", rec, false, fmt.Errorf("path %s", quoted)
	}
	if rest := strings.TrimPrefix(quoted[len(q):], " "); rest != "" {
		if rec.alt, err = strconv.Unquote(rest); err != nil {
			return "", rec, false, fmt.Errorf("second path %s", rest)
		}
	}
	return string(raw), rec, true, nil
}

// rewriteRefs replaces the log with one record per live reference.
func (d *diskBackend) rewriteRefs(live map[string]refRec) error {
	var buf bytes.Buffer
	buf.WriteString(refsHeader + "\n")
	for k, r := range live {
		refRecord(&buf, k, r)
	}
	f, err := os.CreateTemp(d.dir, ".refs-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	w := bufio.NewWriter(f)
	_, err = w.Write(buf.Bytes())
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, d.refs.path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(d.refs.path))
}
