package bundle

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

// Extras are what a bundle holds besides the evidence.
type Extras struct {
	Host string
	Now  func() time.Time // the manifest's time; time.Now when nil
	// Report is the live run's findings (diag.json); nil writes null.
	Report any
	// Log is the tail of vcped's log; LogError why it could not be read.
	Log      []byte
	LogError error
	// DeviceKey, when known (VCPE_KEY), is scrubbed like the other secrets.
	DeviceKey string
}

// errorDoc stands in a part file for a part that could not be gathered.
type errorDoc struct {
	Error string `json:"error"`
}

// FromEvidence assembles the bundle of ev, the evidence a live diagnosis
// judged, and returns it with the secrets it must be scrubbed of. Every
// part of ev goes in; what could not be gathered is said in the part's
// file and in the manifest's notes.
func FromEvidence(ev *suite.Evidence, x Extras) (*Bundle, []string, error) {
	if x.Now == nil {
		x.Now = time.Now
	}
	b := New(x.Host, x.Now())
	secrets := []string{}
	if x.DeviceKey != "" {
		secrets = append(secrets, x.DeviceKey)
	}
	if err := b.AddJSON(FileEvidence, ev); err != nil {
		return nil, nil, err
	}

	var state any = errorDoc{Error: "not read"}
	switch {
	case ev.State != nil:
		secrets = append(secrets, Secrets(ev.State)...)
		state = redactState(ev.State)
	case ev.StateError != "":
		state = errorDoc{Error: ev.StateError}
		b.Note("state: %s", ev.StateError)
	}
	if err := b.AddJSON(FileState, state); err != nil {
		return nil, nil, err
	}

	var status any = errorDoc{Error: "not asked"}
	switch {
	case ev.Status != nil:
		status = ev.Status
	case ev.StatusError != "":
		status = errorDoc{Error: ev.StatusError}
		b.Note("status: %s", ev.StatusError)
	}
	if err := b.AddJSON(FileStatus, status); err != nil {
		return nil, nil, err
	}

	var cfg any = errorDoc{Error: "the controller was not asked (no device state)"}
	switch {
	case ev.Config != nil:
		cfg = ev.Config
	case ev.ConfigError != nil:
		cfg = errorDoc{Error: ev.ConfigError.Error()}
		b.Note("config: %s", ev.ConfigError.Error())
	case ev.ControllerError != "":
		cfg = errorDoc{Error: ev.ControllerError}
		b.Note("config: %s", ev.ControllerError)
	}
	if err := b.AddJSON(FileConfig, cfg); err != nil {
		return nil, nil, err
	}

	probes := ev.Probes
	if probes == nil {
		probes = map[string]diag.Result{}
	}
	if err := b.AddJSON(FileProbes, probes); err != nil {
		return nil, nil, err
	}
	for n, e := range ev.ProbeErrors {
		b.Note("probe %s: %s", n, e)
	}

	if ev.Snapshot != nil {
		files, err := snapshotFiles(ev.Snapshot)
		if err != nil {
			b.Note("snapshot: %v", err)
		}
		for n, data := range files {
			b.Add(DirSnapshot+"/"+n, data)
		}
	} else {
		b.Note("snapshot: the host snapshot could not be taken")
	}

	if err := b.AddJSON(FileDiag, x.Report); err != nil {
		return nil, nil, err
	}
	if x.LogError != nil {
		b.Note("logs: %v", x.LogError)
	}
	b.Add(FileLog, x.Log)
	return b, secrets, nil
}

// Load reads the bundle in file (checked against its manifest) back into
// the evidence it was made from.
func Load(file string) (*suite.Evidence, *Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	files, m, err := Read(f)
	if err != nil {
		return nil, nil, err
	}
	ev, err := Evidence(files)
	if err != nil {
		return nil, nil, err
	}
	return ev, m, nil
}

// Evidence decodes the evidence of a bundle's files (as Read returns
// them). A part file holding an error document leaves its part not
// gathered (evidence.json says why); the secrets' "[redacted]" stand-ins
// are read as absent.
func Evidence(files map[string][]byte) (*suite.Evidence, error) {
	ev := &suite.Evidence{}
	raw, ok := files[FileEvidence]
	if !ok {
		return nil, fmt.Errorf("read bundle: no %s: not a bundle of this version (written by vcpe diag bundle %d)", FileEvidence, Version)
	}
	if err := json.Unmarshal(raw, ev); err != nil {
		return nil, fmt.Errorf("read bundle: %s: %w", FileEvidence, err)
	}
	// part decodes name into v unless it holds an error document (written
	// for the reader of the archive; why the part is missing is in
	// evidence.json). Secrets' "[redacted]" stand-ins are read as absent.
	part := func(name string, v any, redacted ...string) (bool, error) {
		data, ok := files[name]
		if !ok {
			return false, nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return false, fmt.Errorf("read bundle: %s: %w", name, err)
		}
		if _, ok := m["error"]; ok && len(m) == 1 {
			return false, nil
		}
		for _, k := range redacted {
			if string(m[k]) == `"`+Redacted+`"` {
				delete(m, k)
			}
		}
		clean, _ := json.Marshal(m)
		if err := json.Unmarshal(clean, v); err != nil {
			return false, fmt.Errorf("read bundle: %s: %w", name, err)
		}
		return true, nil
	}
	var st device.State
	if ok, err := part(FileState, &st, "private_key", "credential"); err != nil {
		return nil, err
	} else if ok {
		ev.State = &st
	}
	var status dataplane.Status
	if ok, err := part(FileStatus, &status); err != nil {
		return nil, err
	} else if ok {
		ev.Status = &status
	}
	var cfg api.DeviceConfig
	if ok, err := part(FileConfig, &cfg); err != nil {
		return nil, err
	} else if ok {
		ev.Config = &cfg
	}
	if data, ok := files[FileProbes]; ok {
		if err := json.Unmarshal(data, &ev.Probes); err != nil {
			return nil, fmt.Errorf("read bundle: %s: %w", FileProbes, err)
		}
	}
	snap := map[string][]byte{}
	for name, data := range files {
		if rel, ok := strings.CutPrefix(name, DirSnapshot+"/"); ok && rel != "" {
			snap[rel] = data
		}
	}
	if len(snap) > 0 {
		ev.Snapshot = precheck.NewSnapshot(snap)
		if ev.Precheck == nil {
			// The checks are pure functions of the snapshot.
			r := precheck.Run(context.Background(), ev.Snapshot, precheck.Options{})
			ev.Precheck = &r
		}
	}
	return ev, nil
}

// Secrets are the values of st that must never leave the host: the
// WireGuard private key (base64, as wg(8) and the state file write it, and
// hex, as the UAPI does) and the device credential.
func Secrets(st *device.State) []string {
	var out []string
	if !st.PrivateKey.IsZero() {
		out = append(out, st.PrivateKey.String(), hex.EncodeToString(st.PrivateKey[:]))
	}
	if st.Credential != "" {
		out = append(out, st.Credential)
	}
	return out
}

// redactState is the state document with its secrets replaced.
func redactState(st *device.State) map[string]any {
	b, _ := json.Marshal(st)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["private_key"] = Redacted
	m["credential"] = Redacted
	return m
}

// snapshotFiles saves snap in its documented layout and reads the files
// back, so the bundle's snapshot/ is exactly what precheck.Load reads.
func snapshotFiles(snap *precheck.Snapshot) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "vcpe-bundle-snapshot-")
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := snap.Save(dir); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: read back: %w", err)
	}
	return files, nil
}

// LogTailBytes is how much of vcped's log file a bundle keeps.
const LogTailBytes = 256 << 10

// TailFile returns the last n bytes of path, starting at a line boundary.
func TailFile(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := fi.Size() - n
	if off < 0 {
		off = 0
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, n))
	if err != nil {
		return nil, err
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b, nil
}

// ErrNoLog means neither a log file nor a systemd journal was found.
var ErrNoLog = errors.New("no vcped log")
