//go:build !unix

package blockstore

import (
	"os"
	"path/filepath"
)

// lockDir on systems without flock only creates the lock file; two
// processes sharing a store there is not detected.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o644)
}
