// Package dockercli drives the docker command line for shoal's multi-host
// runs (sim's docker runner and the deploy tests): run a command, build
// the shoal image from the repository once per content (image.go), copy a
// file into a container and hash one out of it. It shells out to the docker CLI, which every Docker
// engine ships, rather than linking an engine client.
package dockercli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Available reports why no Docker engine answers, or nil.
func Available(ctx context.Context) error {
	if _, err := Run(ctx, nil, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("no Docker engine answers (%v): start one, or run without docker", err)
	}
	return nil
}

// Run runs `docker args...` with stdin (may be nil) and returns its
// trimmed stdout; an error carries docker's stderr.
func Run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// PutFile writes data as dir/name inside a container, owned by the
// image's shoal user (65532).
func PutFile(ctx context.Context, container, dir, name string, data []byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Uid: 65532, Gid: 65532, ModTime: time.Now()}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := Run(ctx, &buf, "cp", "-", container+":"+dir)
	return err
}

// FileSHA256 hashes a file of a container, read with `docker cp`.
func FileSHA256(ctx context.Context, container, path string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", "cp", container+":"+path, "-")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer func() { _ = cmd.Wait() }()
	tr := tar.NewReader(out)
	if _, err := tr.Next(); err != nil {
		return "", fmt.Errorf("docker cp %s:%s: %v: %s", container, path, err, errb.String())
	}
	h := sha256.New()
	if _, err := io.Copy(h, tr); err != nil {
		return "", err
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("docker cp %s:%s: more than one file", container, path)
	}
	_, _ = io.Copy(io.Discard, out)
	return hex.EncodeToString(h.Sum(nil)), nil
}
