package kuborpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/node"
)

// maxBlock is the largest block block/put takes: Bitswap's 2 MiB, which is
// also the most shoal's block exchange carries (allow-big-block cannot
// lift it here: such a block could never leave this node).
const maxBlock = 2 << 20

// blockStat is Kubo's BlockStat.
type blockStat struct {
	Key  string
	Size int
}

// parts iterates the files of a multipart request body (Kubo clients send
// one part per file, directories as application/x-directory parts).
func parts(r *http.Request) (*multipart.Reader, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "multipart/form-data" && mt != "multipart/mixed") {
		return nil, badRequest("the body must be multipart/form-data with one part per file (got Content-Type %q)", r.Header.Get("Content-Type"))
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest("reading the multipart body: %v", err)
	}
	return mr, nil
}

func isDirPart(p *multipart.Part) bool {
	mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
	return mt == "application/x-directory"
}

// blockPrefix is the CID prefix block/put builds from cid-codec, mhtype
// and mhlen (Kubo's defaults: raw, sha2-256, the hash's own length).
func blockPrefix(a args) (cid.Prefix, error) {
	codecName := a.str("cid-codec")
	if f := a.str("format"); f != "" && codecName == "" {
		codecName = f
		if f == "v0" {
			return cid.Prefix{}, badRequest("format=v0 (CIDv0) is not supported by shoal: use cid-codec=dag-pb")
		}
	}
	if codecName == "" {
		codecName = "raw"
	}
	var codec multicodec.Code
	if err := codec.Set(codecName); err != nil {
		return cid.Prefix{}, badRequest("unrecognized CID codec: %s", codecName)
	}
	hashName := a.str("mhtype")
	if hashName == "" {
		hashName = "sha2-256"
	}
	if hashName != "sha2-256" {
		return cid.Prefix{}, badRequest("unrecognized or unsupported multihash function: %s (shoal's store holds sha2-256 blocks)", hashName)
	}
	length := -1
	if s := a.str("mhlen"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return cid.Prefix{}, badRequest("option \"mhlen\": %q is not an integer", s)
		}
		if n != -1 && n != 32 {
			return cid.Prefix{}, badRequest("mhlen %d: sha2-256 digests are 32 bytes", n)
		}
		length = n
	}
	return cid.Prefix{Version: 1, Codec: uint64(codec), MhType: mh.SHA2_256, MhLength: length}, nil
}

func (s *server) blockPut(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	prefix, err := blockPrefix(a)
	var pin bool
	if err == nil {
		pin, err = a.boolOpt("pin", false)
	}
	if err == nil {
		_, err = a.boolOpt("allow-big-block", false)
	}
	s.eachPart(w, r, err, func(ctx context.Context, p *multipart.Part, emit func(any) error) error {
		if isDirPart(p) {
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(p, maxBlock+1))
		if err != nil {
			return fmt.Errorf("reading a block from the request: %w", err)
		}
		if len(data) > maxBlock {
			return errors.New("produced block is over 2MiB: big blocks can't be exchanged with other peers (shoal holds none): use `add` to chunk a bigger file")
		}
		c, err := prefix.Sum(data)
		if err == nil {
			err = s.n.PutBlock(ctx, c, data)
		}
		if err == nil && pin {
			err = s.n.Pin(ctx, c)
		}
		if err != nil {
			return err
		}
		return emit(blockStat{Key: c.String(), Size: len(data)})
	})
}

// errGone marks an answer whose client stopped reading: nothing more can
// be said to it.
var errGone = errors.New("kuborpc: the client stopped reading")

// eachPart answers a multipart upload (block/put, add) as a stream: unless
// optErr (from the command's options) refuses the request, it hands fn
// each part of the body in order, with emit to send a line of the answer,
// and ends the stream with the first error, fn's or the body's.
func (s *server) eachPart(w http.ResponseWriter, r *http.Request, optErr error, fn func(ctx context.Context, p *multipart.Part, emit func(any) error) error) {
	body, err := (*multipart.Reader)(nil), optErr
	if err == nil {
		body, err = parts(r)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	// The answer streams while the body is still being read (IPFS
	// Cluster sends a whole DAG as one chunked block/put). Without full
	// duplex, Go's HTTP/1 server discards up to 256 KiB of the unread body
	// when the first line is flushed, and the next block read is corrupt.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		s.log.Warn("rpc: uploads cannot stream answers on this connection", "err", err)
	}
	st := s.newStream(w)
	emit := func(v any) error {
		if err := st.emit(v); err != nil {
			return fmt.Errorf("%w: %v", errGone, err)
		}
		return nil
	}
	for {
		p, err := body.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			st.end(badRequest("reading the multipart body: %v", err))
			return
		}
		if err := fn(r.Context(), p, emit); err != nil {
			if !errors.Is(err, errGone) {
				st.end(err)
			}
			return
		}
	}
	// The multipart reader stops at the closing boundary; what follows it
	// (its CRLF, any epilogue) is still unread. With the answer already
	// streaming, the server cannot say "Connection: close" any more, so
	// an unread body made it drop the connection silently after the
	// answer, and a client's next request on the kept-alive connection
	// failed with EOF (TestBlockPutStreamed: 7 of 100 runs; 0 of 300 with this read). Read a little
	// of it so the connection stays usable; a longer epilogue still ends
	// the connection, after the answer.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, epilogueMax))
	st.end(nil)
}

// epilogueMax is how much of a multipart body after its closing boundary
// eachPart reads so that the connection can be kept alive.
const epilogueMax = 4 << 10

// requestedBlock reads block get/stat's argument (a CID or an /ipfs/
// path) and the block it names.
func (s *server) requestedBlock(r *http.Request) (cid.Cid, []byte, error) {
	got, err := argsOf(r).need("cid")
	if err != nil {
		return cid.Undef, nil, err
	}
	c, err := s.resolveArg(r.Context(), got[0])
	if err != nil {
		return cid.Undef, nil, err
	}
	data, err := s.n.Block(r.Context(), c)
	return c, data, err
}

func (s *server) blockGet(w http.ResponseWriter, r *http.Request) {
	_, data, err := s.requestedBlock(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.bytesOut(w, bytes.NewReader(data), -1, "application/vnd.ipld.raw")
}

func (s *server) blockStat(w http.ResponseWriter, r *http.Request) {
	c, data, err := s.requestedBlock(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.single(w, blockStat{Key: c.String(), Size: len(data)})
}

// addEvent is Kubo's AddEvent.
type addEvent struct {
	Name  string
	Hash  string `json:",omitempty"`
	Bytes int64  `json:",omitempty"`
	Size  string `json:",omitempty"`
}

// checkImportOptions refuses add options that would give another CID than
// shoal's one import profile (unixfs-v1-2025).
func checkImportOptions(a args) error {
	want := map[string]string{"cid-version": "1", "raw-leaves": "true", "chunker": "size-1048576", "hash": "sha2-256",
		"only-hash": "false", "wrap-with-directory": "false", "nocopy": "false", "inline": "false", "trickle": "false"}
	for name, ok := range want {
		if v := a.str(name); v != "" && v != ok {
			return badRequest("add option %s=%s is not supported: shoal imports with the unixfs-v1-2025 profile only (%s=%s)", name, v, name, ok)
		}
	}
	return nil
}

func (s *server) add(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	err := checkImportOptions(a)
	var pin, progress bool
	if err == nil {
		pin, err = a.boolOpt("pin", true)
	}
	if err == nil {
		progress, err = a.boolOpt("progress", false)
	}
	n := 0
	s.eachPart(w, r, err, func(ctx context.Context, p *multipart.Part, emit func(any) error) error {
		if isDirPart(p) || n > 0 {
			return badRequest("shoal's RPC adds one file per request (directories: `shoal share DIR`)")
		}
		n++
		cr := &countingReader{r: p}
		res, err := s.n.AddFile(ctx, cr)
		if err == nil && !pin {
			err = s.n.Unpin(ctx, res.CID)
		}
		var ds node.DAGStat
		if err == nil {
			ds, err = s.n.WalkLocal(ctx, res.CID, nil)
		}
		if err != nil {
			return err
		}
		name := p.FileName()
		if name == "" {
			name = res.CID.String()
		}
		if progress {
			_ = emit(addEvent{Name: name, Bytes: cr.n})
		}
		return emit(addEvent{Name: name, Hash: res.CID.String(), Size: strconv.FormatUint(ds.Bytes, 10)})
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *server) cat(w http.ResponseWriter, r *http.Request) {
	a := argsOf(r)
	paths, err := a.need("ipfs-path")
	offset, length := int64(0), int64(-1)
	if err == nil {
		offset, err = intOpt(a, "offset", 0)
	}
	if err == nil {
		length, err = intOpt(a, "length", -1)
	}
	if err == nil && offset < 0 {
		err = errors.New("cannot specify negative offset")
	}
	if err == nil && length < -1 {
		err = errors.New("cannot specify negative length")
	}
	if err == nil && len(paths) > 1 {
		err = badRequest("shoal's RPC cats one path per request")
	}
	var c cid.Cid
	if err == nil {
		c, err = s.resolveArg(r.Context(), paths[0])
	}
	var f node.File
	if err == nil {
		f, err = s.n.Open(r.Context(), c)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	defer f.Close()
	size := int64(f.Size())
	offset = min(offset, size)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		s.fail(w, err)
		return
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	f.Expect(uint64(offset), uint64(offset+n)) // only these blocks, not the whole DAG
	s.bytesOut(w, io.LimitReader(f, n), n, "text/plain")
}

func intOpt(a args, name string, def int64) (int64, error) {
	v := a.str(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def, badRequest("option %q: %q is not an integer", name, v)
	}
	return n, nil
}

func (s *server) resolve(w http.ResponseWriter, r *http.Request) {
	got, err := argsOf(r).need("name")
	var c cid.Cid
	if err == nil {
		c, err = s.resolveArg(r.Context(), got[0])
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	s.single(w, struct{ Path string }{"/ipfs/" + c.String()})
}

func (s *server) nameResolve(w http.ResponseWriter, r *http.Request) {
	name := s.n.Info().ID
	if got := argsOf(r).q["arg"]; len(got) > 0 {
		name = got[0]
	}
	s.fail(w, fmt.Errorf("cannot resolve %s: shoal has no IPNS; name content by its /ipfs/CID", name))
}
