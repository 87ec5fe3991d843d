package controller

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/controller/store"
)

// BackupFormat is the layout version of a backup archive.
const BackupFormat = 1

// manifestName is the backup's first member.
const manifestName = "manifest.json"

// BackupManifest describes a backup: what it holds and whose it is.
type BackupManifest struct {
	Format      int          `json:"format"`
	Created     time.Time    `json:"created"`
	Fingerprint string       `json:"fingerprint"` // the CA devices pin
	Schema      int          `json:"store_schema,omitempty"`
	Files       []BackupFile `json:"files"`
}

// BackupFile is one file of the state directory in a backup.
type BackupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Backup writes a tar archive of the controller state directory dir to w:
// a consistent snapshot of the SQLite store (taken while a controller may
// be running; store.SnapshotSQLite) and every other regular file in dir
// (CA, certificates, the hub's WireGuard key), each checksummed in a
// manifest. Sockets and the store's WAL files are left out. The archive
// holds private keys: write it with mode 0600.
func Backup(ctx context.Context, dir string, now time.Time, w io.Writer) (*BackupManifest, error) {
	fp, err := ReadFingerprint(dir)
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w (is it a controller state directory?)", dir, err)
	}
	m := &BackupManifest{Format: BackupFormat, Created: now.UTC(), Fingerprint: fp}
	tmp, err := os.MkdirTemp(dir, ".backup-")
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", dir, err)
	}
	type member struct{ name, path string }
	var members []member
	for _, e := range entries {
		name := e.Name()
		switch {
		case !e.Type().IsRegular(), strings.HasPrefix(name, "."),
			strings.HasPrefix(name, StoreFile+"-"): // -wal, -shm, -journal
			continue
		case name == StoreFile:
			snap := filepath.Join(tmp, StoreFile)
			if m.Schema, err = store.SnapshotSQLite(ctx, filepath.Join(dir, name), snap); err != nil {
				return nil, fmt.Errorf("back up %s: %w", dir, err)
			}
			members = append(members, member{name, snap})
		default:
			members = append(members, member{name, filepath.Join(dir, name)})
		}
	}
	sort.Slice(members, func(i, j int) bool { return members[i].name < members[j].name })
	data := make([][]byte, len(members))
	for i, mb := range members {
		if data[i], err = os.ReadFile(mb.path); err != nil {
			return nil, fmt.Errorf("back up %s: %w", dir, err)
		}
		sum := sha256.Sum256(data[i])
		m.Files = append(m.Files, BackupFile{Name: mb.name, Size: int64(len(data[i])), SHA256: hex.EncodeToString(sum[:])})
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(w)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := put(manifestName, append(mj, '\n')); err != nil {
		return nil, fmt.Errorf("write backup: %w", err)
	}
	for i, mb := range members {
		if err := put(mb.name, data[i]); err != nil {
			return nil, fmt.Errorf("write backup: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write backup: %w", err)
	}
	return m, nil
}

// ErrStateNotEmpty is returned by Restore when the target directory holds
// files.
var ErrStateNotEmpty = errors.New("state directory is not empty")

// Restore unpacks a Backup archive into the controller state directory
// dir, which must be absent or empty (a running controller's is not). It
// checks every file against the manifest and the store's schema version
// before anything appears in dir: it unpacks next to dir, then renames, so
// a failed restore leaves dir as it was. Files are 0600, dir 0700.
func Restore(r io.Reader, dir string) (*BackupManifest, error) {
	dir = filepath.Clean(dir)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("restore into %s: %w: stop vcpe-hub and restore into an empty or new directory (--state)", dir, ErrStateNotEmpty)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("restore into %s: %w", dir, err)
	}
	tr := tar.NewReader(r)
	var m *BackupManifest
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read backup: %w", err)
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) || strings.HasPrefix(h.Name, ".") || h.Size > 1<<30 {
			return nil, fmt.Errorf("read backup: unexpected member %q: not a vcpe-hub backup", h.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read backup: %w", err)
		}
		if h.Name == manifestName {
			m = &BackupManifest{}
			if err := json.Unmarshal(b, m); err != nil {
				return nil, fmt.Errorf("read backup: manifest: %w", err)
			}
			continue
		}
		files[h.Name] = b
	}
	if m == nil {
		return nil, errors.New("read backup: no manifest: not a vcpe-hub backup")
	}
	if m.Format != BackupFormat {
		return nil, fmt.Errorf("read backup: format %d; this vcpe-hub reads format %d (restore it with the vcpe-hub that made it)", m.Format, BackupFormat)
	}
	if m.Schema > store.SchemaVersion {
		return nil, fmt.Errorf("read backup: its store has schema version %d, newer than this vcpe-hub reads (%d): restore it with the vcpe-hub that made it", m.Schema, store.SchemaVersion)
	}
	if len(files) != len(m.Files) {
		return nil, fmt.Errorf("read backup: %d files, manifest lists %d: the backup is damaged", len(files), len(m.Files))
	}
	for _, f := range m.Files {
		b, ok := files[f.Name]
		sum := sha256.Sum256(b)
		if !ok || hex.EncodeToString(sum[:]) != f.SHA256 {
			return nil, fmt.Errorf("read backup: %s is missing or does not match its checksum: the backup is damaged", f.Name)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("restore into %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-")
	if err != nil {
		return nil, fmt.Errorf("restore into %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, err
	}
	for name, b := range files {
		if err := writeSynced(filepath.Join(tmp, name), b); err != nil {
			return nil, fmt.Errorf("restore into %s: %w", dir, err)
		}
	}
	if fp, err := ReadFingerprint(tmp); err != nil || fp != m.Fingerprint {
		return nil, fmt.Errorf("read backup: its CA (%s, %v) is not the one the manifest names (%s): the backup is damaged", fp, err, m.Fingerprint)
	}
	// rename(2) replaces an empty directory (systemd's StateDirectory);
	// os.Rename refuses to.
	if err := syscall.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("restore into %s: %w", dir, err)
	}
	return m, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, bytes.NewReader(b)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
