package node

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
)

// BenchmarkReceiveLeaf is what the receive path does with one verified
// 1 MiB leaf of a file being fetched with -o, on a disk store:
//
//	copy: before the file was the seed — the store writes its own copy
//	      (a block file) and the leaf is then written into the user's file;
//	seed: now — the leaf is written into the user's file only and the
//	      store indexes a reference to it (checkpoints sync and record
//	      them off this path).
//
//	go test -run '^$' -bench BenchmarkReceiveLeaf -benchtime 256x ./node/
func BenchmarkReceiveLeaf(b *testing.B) {
	const leafSize = 1 << 20
	for _, mode := range []string{"copy", "seed"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			store, err := blockstore.Open(blockstore.Config{Dir: filepath.Join(dir, "store")})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			f, err := os.Create(filepath.Join(dir, "out"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			data := make([]byte, leafSize)
			var l content.Layout
			cids := make([]cid.Cid, b.N)
			for i := range b.N {
				data[0], data[1], data[2] = byte(i), byte(i>>8), byte(i>>16)
				sum := sha256.Sum256(data)
				h, _ := mh.Encode(sum[:], mh.SHA2_256)
				cids[i] = cid.NewCidV1(cid.Raw, h)
				l.Pieces = append(l.Pieces, content.Piece{C: cids[i], Offset: uint64(i) * leafSize, Size: leafSize})
			}
			s := newFileSink(f, l, nil)
			if mode == "seed" {
				s.seed = &seedRefs{store: store, file: f, name: func() string { return f.Name() }, kick: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler)}
			}
			ctx := context.Background()
			b.SetBytes(leafSize)
			b.ResetTimer()
			for i := range b.N {
				data[0], data[1], data[2] = byte(i), byte(i>>8), byte(i>>16)
				if mode == "copy" {
					if err := store.PutVerified(ctx, cids[i], data); err != nil {
						b.Fatal(err)
					}
				}
				s.write(cids[i], data)
			}
			b.StopTimer()
			if err := s.failure(); err != nil {
				b.Fatal(err)
			}
			if st := store.Stat(); (mode == "seed") != (st.Refs == b.N) {
				b.Fatalf("%s: store %+v after %d leaves", mode, st, b.N)
			}
		})
	}
}
