//go:build !unix

package main

import "os"

// lockPart cannot mark a part file here.
func lockPart(*os.File) {}

// partAbandoned cannot tell a running fetch's part file here: keep it.
func partAbandoned(string) bool { return false }
