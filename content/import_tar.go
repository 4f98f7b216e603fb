package content

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ImportTar imports a directory tree sent as a tar stream whose entry
// names are relative to the tree's root ("./" prefixes are dropped), with
// a DirBuilder over p. Regular files, directories and symlinks are kept;
// any other entry type (hard link, device, named pipe) is refused with an
// error naming the entry, as are names DirBuilder refuses.
func ImportTar(ctx context.Context, p BlockPutter, r io.Reader, opts ImportOptions) (ImportResult, error) {
	b := NewDirBuilder(p, opts)
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ImportResult{}, fmt.Errorf("reading the tar stream: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch h.Typeflag {
		case tar.TypeDir:
			err = b.AddDir(name)
		case tar.TypeReg:
			_, err = b.AddFile(ctx, name, tr)
		case tar.TypeSymlink:
			err = b.AddSymlink(ctx, name, h.Linkname)
		default:
			err = fmt.Errorf("entry %q is a %s; shoal stores regular files, directories and symlinks only", h.Name, tarTypeName(h.Typeflag))
		}
		if err != nil {
			return ImportResult{}, fmt.Errorf("tar entry %q: %w", h.Name, err)
		}
	}
	return b.Finish(ctx)
}

func tarTypeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}
