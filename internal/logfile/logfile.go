// Package logfile is a log file rotated by size, for daemons that run
// where no journal collects their output (vcped in detached mode). When a
// write would take FILE past its limit, FILE.N-1 becomes FILE.N, …, FILE
// becomes FILE.1, and a new FILE is started. The names are fixed
// (Names), not timestamped, so an installer can record every file up
// front and an uninstall removes exactly them. Files are 0600.
//
// It holds no policy about what is logged and never deletes anything but
// the oldest rotated file.
package logfile

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

// Writer is an io.WriteCloser safe for concurrent use.
type Writer struct {
	path     string
	maxBytes int64
	backups  int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (appending to) path, rotated once it would exceed maxBytes,
// keeping backups rotated files.
func Open(path string, maxBytes int64, backups int) (*Writer, error) {
	if maxBytes < 1 || backups < 0 {
		return nil, fmt.Errorf("log file %s: size limit %d and backups %d must be positive", path, maxBytes, backups)
	}
	w := &Writer{path: path, maxBytes: maxBytes, backups: backups}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// Names lists every file a Writer on path with backups may create: path,
// path.1, …, path.backups.
func Names(path string, backups int) []string {
	names := []string{path}
	for i := 1; i <= backups; i++ {
		names = append(names, path+"."+strconv.Itoa(i))
	}
	return names
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log file: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past the
// limit (a single larger write goes whole into a fresh file).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, os.ErrClosed
	}
	if w.size > 0 && w.size+int64(len(p)) > w.maxBytes {
		if err := w.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	w.f = nil
	names := Names(w.path, w.backups)
	if w.backups == 0 {
		if err := os.Truncate(w.path, 0); err != nil {
			return fmt.Errorf("rotate log file: %w", err)
		}
		return w.open()
	}
	for i := len(names) - 1; i >= 1; i-- {
		if err := os.Rename(names[i-1], names[i]); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate log file: %w", err)
		}
	}
	return w.open()
}

// Close closes the file; later writes fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
