//go:build !linux

package node

// fileName cannot name an open file's current path here: references to
// files being fetched stay in memory and the store keeps copies.
func fileName(any) string { return "" }
