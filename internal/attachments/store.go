// Package attachments stores uploaded files behind a small interface; the
// local-directory Store is the default, and an S3-compatible store could
// implement the same three methods.
package attachments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Store keeps attachment bytes by key.
type Store interface {
	// Put writes r under key.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open reads the object under key.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Dir is a Store in a local directory.
type Dir struct{ root string }

// NewDir returns a Store rooted at dir, creating it.
func NewDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("attachments: directory is required")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("attachments: creating %s: %w", dir, err)
	}
	return &Dir{root: dir}, nil
}

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.ContainsAny(key, `\`) || filepath.IsAbs(key) {
		return "", fmt.Errorf("attachments: invalid key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put implements Store; the file appears whole or not at all.
func (d *Dir) Put(_ context.Context, key string, r io.Reader) (int64, error) {
	p, err := d.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, fmt.Errorf("attachments: storing %s: %w", key, err)
	}
	return n, nil
}

// Open implements Store.
func (d *Dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// Delete implements Store.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("attachments: deleting %s: %w", key, err)
	}
	return nil
}
