package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Version is the layout version written in the manifest.
const Version = 1

// The files of a bundle.
const (
	FileManifest = "manifest.json"
	FileEvidence = "evidence.json"
	DirSnapshot  = "snapshot"
	FileStatus   = "status.json"
	FileState    = "state.json"
	FileConfig   = "config.json"
	FileProbes   = "probes.json"
	FileLog      = "logs/vcped.log"
	FileDiag     = "diag.json"
)

// Redacted replaces every secret.
const Redacted = "[redacted]"

// Manifest is manifest.json.
type Manifest struct {
	Version int         `json:"version"`
	Host    string      `json:"host"`
	Time    time.Time   `json:"time"`
	Files   []FileEntry `json:"files"`
	// Notes say what could not be collected, and why.
	Notes []string `json:"notes"`
}

// FileEntry is one file of the bundle.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// Bundle is a bundle being assembled in memory.
type Bundle struct {
	Host  string
	Time  time.Time
	files map[string][]byte
	notes []string
}

// New returns an empty bundle.
func New(host string, t time.Time) *Bundle {
	return &Bundle{Host: host, Time: t, files: map[string][]byte{}}
}

// Add puts a file in the bundle (a slash-separated relative name).
func (b *Bundle) Add(name string, data []byte) { b.files[name] = data }

// AddJSON puts v, indented, in the bundle.
func (b *Bundle) AddJSON(name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bundle: encode %s: %w", name, err)
	}
	b.files[name] = append(data, '\n')
	return nil
}

// Note records what could not be collected.
func (b *Bundle) Note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// Files lists the bundle's files, sorted.
func (b *Bundle) Files() []string {
	names := make([]string, 0, len(b.files))
	for n := range b.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// minSecretLen keeps a short value (an empty credential, say) from
// redacting half the bundle.
const minSecretLen = 8

// Scrub replaces every occurrence of each secret in data by Redacted.
func Scrub(data []byte, secrets []string) []byte {
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		data = bytes.ReplaceAll(data, []byte(s), []byte(Redacted))
	}
	return data
}

// WriteTo scrubs every file of secrets, adds the manifest and writes the
// tar.gz to w.
func (b *Bundle) WriteTo(w io.Writer, secrets []string) error {
	m := Manifest{Version: Version, Host: b.Host, Time: b.Time.UTC(), Files: []FileEntry{}, Notes: b.notes}
	if m.Notes == nil {
		m.Notes = []string{}
	}
	scrubbed := map[string][]byte{}
	for _, n := range b.Files() {
		data := Scrub(b.files[n], secrets)
		scrubbed[n] = data
		sum := sha256.Sum256(data)
		m.Files = append(m.Files, FileEntry{Name: n, Size: len(data), SHA256: hex.EncodeToString(sum[:])})
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("bundle: encode manifest: %w", err)
	}
	mb = Scrub(append(mb, '\n'), secrets)

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	put := func(name string, data []byte) error {
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: m.Time, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("bundle: write %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("bundle: write %s: %w", name, err)
		}
		return nil
	}
	if err := put(FileManifest, mb); err != nil {
		return err
	}
	for _, n := range b.Files() {
		if err := put(n, scrubbed[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundle: finish tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("bundle: finish gzip: %w", err)
	}
	return nil
}

// Bounds of what Read accepts: a bundle is a few hundred small files.
const (
	MaxEntries   = 10000     // archive entries of any type
	MaxFileSize  = 64 << 20  // bytes of one file
	MaxTotalSize = 256 << 20 // bytes of all files together
)

// Read reads a bundle written by WriteTo: every file by name (the manifest
// included), after checking each listed file's SHA-256 and that no file
// outside the manifest is in it. It refuses more than MaxEntries entries,
// a file larger than MaxFileSize and more than MaxTotalSize in all.
func Read(r io.Reader) (map[string][]byte, *Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read bundle: %w", err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	entries, total := 0, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read bundle: %w", err)
		}
		if entries++; entries > MaxEntries {
			return nil, nil, fmt.Errorf("read bundle: more than %d entries", MaxEntries)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(h.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return nil, nil, fmt.Errorf("read bundle: entry %q escapes the bundle", h.Name)
		}
		if _, dup := files[name]; dup {
			return nil, nil, fmt.Errorf("read bundle: %s appears twice", name)
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxFileSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("read bundle: %s: %w", name, err)
		}
		if len(data) > MaxFileSize {
			return nil, nil, fmt.Errorf("read bundle: %s is larger than %d bytes", name, MaxFileSize)
		}
		if total += len(data); total > MaxTotalSize {
			return nil, nil, fmt.Errorf("read bundle: its files hold more than %d bytes", MaxTotalSize)
		}
		files[name] = data
	}
	var m Manifest
	if err := json.Unmarshal(files[FileManifest], &m); err != nil {
		return nil, nil, fmt.Errorf("read bundle: %s: %w", FileManifest, err)
	}
	listed := map[string]bool{FileManifest: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		data, ok := files[f.Name]
		if !ok {
			return nil, nil, fmt.Errorf("read bundle: %s is listed in the manifest but missing", f.Name)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			return nil, nil, fmt.Errorf("read bundle: %s does not match its SHA-256 in the manifest", f.Name)
		}
	}
	for name := range files {
		if !listed[name] {
			return nil, nil, fmt.Errorf("read bundle: %s is not in the manifest", name)
		}
	}
	return files, &m, nil
}

// WriteFile writes the bundle to path with mode 0600 (never readable by
// others, even for a moment).
func (b *Bundle) WriteFile(path string, secrets []string) error {
	var buf bytes.Buffer
	if err := b.WriteTo(&buf, secrets); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	return nil
}
