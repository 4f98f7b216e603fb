package content

import (
	"context"
	"io"
)

// ImportFileLayout imports r with a chunk size and width other than the
// profile's, so that tests reach deep trees with little data. Tests only.
func ImportFileLayout(ctx context.Context, r io.Reader, dst BlockPutter, opt ImportOptions, chunkSize, maxLinks int) (ImportResult, error) {
	return importFile(ctx, r, dst, opt, fileLayout{chunkSize: chunkSize, maxLinks: maxLinks})
}
