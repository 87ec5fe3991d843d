package suite

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxBundleFile bounds each file extracted from a bundle.
const maxBundleFile = 64 << 20

// LoadBundle reads the evidence a support bundle (FILE.tar.gz, written by
// `vcpe diag bundle`) holds. The layout may sit at the archive's root or
// under one top directory. Nothing outside a temporary directory is
// written; it is removed before returning.
func LoadBundle(file string) (*Evidence, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	tmp, err := os.MkdirTemp("", "vcpe-bundle-*")
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := extract(f, tmp); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	root := tmp
	if _, err := os.Stat(filepath.Join(tmp, fileEvidence)); errors.Is(err, os.ErrNotExist) {
		if ents, _ := os.ReadDir(tmp); len(ents) == 1 && ents[0].IsDir() {
			root = filepath.Join(tmp, ents[0].Name())
		}
	}
	e, err := LoadEvidence(root)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	return e, nil
}

func extract(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a .tar.gz: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) || name == ".." {
			return fmt.Errorf("archive entry %q escapes the bundle", h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if h.Size > maxBundleFile {
				return fmt.Errorf("archive entry %s is %d bytes, more than %d", h.Name, h.Size, maxBundleFile)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, io.LimitReader(tr, maxBundleFile))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			// links and devices are not part of a bundle: skip them
		}
	}
}
