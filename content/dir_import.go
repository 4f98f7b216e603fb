package content

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ImportPath imports a regular file, a symlink or a whole directory tree
// from the local file system into dst (nil: compute the CID only) and
// returns the root. The CIDs are those of Kubo's `ipfs add -r --hidden`
// with the unixfs-v1-2025 profile (Import.UnixFSHAMTDirectorySizeEstimation
// "block"):
//
//   - hidden files (names starting with ".") are included: shoal shares
//     exactly the tree it is given. Kubo skips them unless --hidden is
//     passed, so compare with `ipfs add -r --hidden`;
//   - symlinks are stored as UnixFS symlinks and never followed, also when
//     path itself is one (Kubo without --dereference-args does the same);
//   - empty directories are kept (Kubo's Import.UnixFSIncludeEmptyDirs
//     default);
//   - no mode or mtime is stored;
//   - sockets, devices and named pipes are ErrUnsupportedFileType, as
//     Kubo refuses them too.
//
// For a directory, Size is the sum of the file sizes and Blocks counts
// every block written, repeats included. Files are imported one at a time,
// each with opt.Workers hashing goroutines (importing small files on a
// goroutine pool was tried and measured no faster on the 2-core test box,
// where small-file import is bound by open/read/close system calls).
// Errors name the path that failed.
func ImportPath(ctx context.Context, path string, dst BlockPutter, opt ImportOptions) (ImportResult, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return ImportResult{}, fmt.Errorf("content: import: %w", err)
	}
	switch mode := fi.Mode(); {
	case mode.IsRegular():
		return importLocalFile(ctx, path, dst, opt)
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return ImportResult{}, fmt.Errorf("content: import: %w", err)
		}
		block := symlinkBlock(target)
		sink := &blockSink{dst: dst}
		c, err := sink.put(ctx, block)
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing symlink %q: %w", path, err)
		}
		return ImportResult{CID: c, Tsize: uint64(len(block)), Blocks: 1}, nil
	case mode.IsDir():
		b := NewDirBuilder(dst, opt)
		if err := addLocalDir(ctx, b, path, ""); err != nil {
			return ImportResult{}, err
		}
		res, err := b.Finish(ctx)
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing %q: %w", path, err)
		}
		return res, nil
	default:
		return ImportResult{}, fmt.Errorf("%w: %q is a %s", ErrUnsupportedFileType, path, fileKind(mode))
	}
}

func importLocalFile(ctx context.Context, path string, dst BlockPutter, opt ImportOptions) (ImportResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImportResult{}, fmt.Errorf("content: import: %w", err)
	}
	defer f.Close()
	res, err := ImportFile(ctx, f, dst, opt)
	if err != nil {
		return ImportResult{}, fmt.Errorf("importing %q: %w", path, err)
	}
	return res, nil
}

// addLocalDir adds the contents of the directory osPath, which is rel in
// the builder, depth first.
func addLocalDir(ctx context.Context, b *DirBuilder, osPath, rel string) error {
	if err := b.AddDir(rel); err != nil {
		return fmt.Errorf("importing %q: %w", osPath, err)
	}
	ents, err := os.ReadDir(osPath)
	if err != nil {
		return fmt.Errorf("content: import: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		childOS := filepath.Join(osPath, e.Name())
		childRel := e.Name()
		if rel != "" {
			childRel = rel + "/" + e.Name()
		}
		if err := addLocalEntry(ctx, b, e.Type(), childOS, childRel); err != nil {
			return err
		}
	}
	return nil
}

func addLocalEntry(ctx context.Context, b *DirBuilder, mode fs.FileMode, osPath, rel string) error {
	switch {
	case mode.IsDir():
		return addLocalDir(ctx, b, osPath, rel)
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(osPath)
		if err != nil {
			return fmt.Errorf("content: import: %w", err)
		}
		if err := b.AddSymlink(ctx, rel, target); err != nil {
			return fmt.Errorf("importing %q: %w", osPath, err)
		}
		return nil
	case mode.IsRegular():
		f, err := os.Open(osPath)
		if err != nil {
			return fmt.Errorf("content: import: %w", err)
		}
		defer f.Close()
		if _, err := b.AddFile(ctx, rel, f); err != nil {
			return fmt.Errorf("importing %q: %w", osPath, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %q is a %s", ErrUnsupportedFileType, osPath, fileKind(mode))
}

func fileKind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	case mode&fs.ModeDevice != 0:
		return "device"
	}
	return "file of type " + mode.Type().String()
}
