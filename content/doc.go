// Package content turns bytes and directory trees into UnixFS blocks and
// back, exactly as Kubo does with its unixfs-v1-2025 import profile
// (IPIP-499): CIDv1, sha2-256, fixed 1 MiB chunks, raw leaves, a balanced
// DAG of at most 1024 links per node, and HAMT-sharded directories
// (fanout 256, murmur3) once a directory's block would exceed 256 KiB. The
// same bytes give the same CID in shoal and in Kubo; tests hold boxo as
// the oracle.
//
// Importing streams: memory stays constant whatever the file size, and
// chunks are hashed in parallel while reading stays sequential. Reading
// back goes through the small BlockGetter interface, so blocks may come
// from the local store or from the network.
//
// Files:
//   - blocks.go: the BlockPutter/BlockGetter interfaces, ImportOptions, ImportResult.
//   - dagpb.go, unixfs.go: the dag-pb and UnixFS Data codecs (strict decoding).
//   - import_file.go, import_file_tree.go: file import (chunking, parallel
//     hashing, the streaming balanced tree builder).
//   - reader.go: FileReader, an io.ReadSeeker/ReaderAt over a file DAG that
//     fetches only the blocks a range needs; readahead.go: its read-ahead
//     (the next few blocks of the range being read, fetched in parallel).
//   - walk.go, links.go: every block under a root in file order; the child
//     links of one block.
//   - dir.go, dir_builder.go, dir_import.go, import_tar.go: directories
//     (DirBuilder for trees that arrive as streams, ImportPath for local
//     paths, ImportTar for tar streams).
//   - kind.go: what a root is and how big, from its root block alone
//     (KindOf, DAGSize, SymlinkTarget), for callers that must not decode
//     UnixFS themselves.
//   - hamt.go: HAMT shard building and decoding.
//   - dir_read.go, resolve.go, list.go: path resolution and listing through
//     basic directories and HAMT shards.
//
// It imports no other shoal package.
package content
