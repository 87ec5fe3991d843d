// Package atomicfile writes files so that a reader, or a crash, sees either
// the old content or the new one, never a mix. It is a leaf: it imports
// nothing of vcpe.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to path so that a reader sees either the old
// content or the new, never a mix: a temporary file in the same directory,
// fsync, rename, fsync of the directory.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// RemoveTemps removes, from dir, the temporary files (".NAME.tmp-*") that
// WriteFile calls killed before their rename left behind, and returns
// their names. Call it only while no WriteFile into dir is running (under
// the lock of whoever writes there).
func RemoveTemps(dir string) []string {
	ms, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	var removed []string
	for _, m := range ms {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && os.Remove(m) == nil {
			removed = append(removed, filepath.Base(m))
		}
	}
	return removed
}
