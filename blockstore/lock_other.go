//go:build !unix

package blockstore

import "os"

// lockDir on systems without flock only creates the lock file; two
// processes sharing a store there is not detected.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(dir+"/LOCK", os.O_CREATE|os.O_RDWR, 0o644)
}
