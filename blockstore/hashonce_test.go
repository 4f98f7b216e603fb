package blockstore

import (
	"bytes"
	"context"
	"testing"
)

// testHashCount: which paths hash a block. Put hashes once, PutVerified
// never (its caller has just hashed the bytes: the block exchange's
// decoder, the importer), Get only with VerifyOnRead (the check on what a
// node serves), once per read.
func testHashCount(t *testing.T, im impl) {
	ctx := context.Background()
	for _, verifyOnRead := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.VerifyOnRead = verifyOnRead
		s := im.open(t, cfg)
		a, b := sizedBlock("hash-a", 5000), sizedBlock("hash-b", 3000)
		step := func(what string, want uint64, fn func() error) {
			t.Helper()
			before := blockHashes.Load()
			if err := fn(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got := blockHashes.Load() - before; got != want {
				t.Fatalf("%s (VerifyOnRead %v) hashed %d times, want %d", what, verifyOnRead, got, want)
			}
		}
		step("Put", 1, func() error { return s.Put(ctx, a.c, a.data) })
		step("PutVerified", 0, func() error { return s.PutVerified(ctx, b.c, b.data) })
		reads := uint64(0)
		if verifyOnRead {
			reads = 1
		}
		step("Get", reads, func() error { _, err := s.Get(ctx, b.c); return err })
	}
}

// testKeepsNoCallerBuffer: Put and PutVerified do not keep the caller's
// slice and Get hands out a buffer the store does not keep, so the block
// exchange and the importer may reuse their pooled buffers as soon as a
// put returns, and a reader may scribble on what it got.
func testKeepsNoCallerBuffer(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	a, b := sizedBlock("own-a", 4000), sizedBlock("own-b", 4000)
	for _, put := range []struct {
		blk block
		fn  func(context.Context, block, []byte) error
	}{
		{a, func(ctx context.Context, x block, buf []byte) error { return s.Put(ctx, x.c, buf) }},
		{b, func(ctx context.Context, x block, buf []byte) error { return s.PutVerified(ctx, x.c, buf) }},
	} {
		buf := bytes.Clone(put.blk.data)
		if err := put.fn(ctx, put.blk, buf); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = 0xee // the caller reuses its buffer for the next block
		}
		mustGet(t, s, put.blk)
		got, err := s.Get(ctx, put.blk.c)
		if err != nil {
			t.Fatal(err)
		}
		got[0] ^= 0xff // a reader writes into what it got
		mustGet(t, s, put.blk)
	}
}
