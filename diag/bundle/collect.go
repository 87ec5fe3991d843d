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
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

// Sources are where Collect gets each part. Every field is required except
// where said; cmd/vcpe wires the real ones, tests their own.
type Sources struct {
	StateDir string
	Host     string
	Now      func() time.Time

	// Gather takes the precheck snapshot.
	Gather func(ctx context.Context) (*precheck.Snapshot, error)
	// Status asks vcped (or falls back to the state file).
	Status func(stateDir string) (dataplane.Status, error)
	// Config asks the controller as the device in st.
	Config func(ctx context.Context, st *device.State) (api.DeviceConfig, error)
	// Probes run a few probes to the hub, each by name.
	Probes func(ctx context.Context, cfg api.DeviceConfig) (map[string]diag.Result, map[string]error)
	// Logs returns the daemon's recent log.
	Logs func(ctx context.Context, stateDir string) ([]byte, error)
	// Suite runs the diagnosis suite; nil writes null.
	Suite func(ctx context.Context) (any, error)
	// DeviceKey, when known (VCPE_KEY), is scrubbed like the other secrets.
	DeviceKey string
}

// Collect assembles a bundle and the secrets it must be scrubbed of. What
// cannot be collected is recorded in the manifest's notes (and in the file
// itself where the layout says so); only a failure to collect anything
// useful is an error.
func Collect(ctx context.Context, s Sources) (*Bundle, []string, error) {
	b := New(s.Host, s.Now())
	secrets := []string{}
	if s.DeviceKey != "" {
		secrets = append(secrets, s.DeviceKey)
	}

	st, stErr := device.LoadState(s.StateDir)
	if stErr != nil {
		b.Note("state: %v", stErr)
		if err := b.AddJSON(FileState, map[string]string{"error": stErr.Error()}); err != nil {
			return nil, nil, err
		}
	} else {
		secrets = append(secrets, Secrets(st)...)
		if err := b.AddJSON(FileState, redactState(st)); err != nil {
			return nil, nil, err
		}
	}

	// The slow parts run concurrently: the snapshot, the controller call,
	// the probes and the suite.
	var (
		wg                sync.WaitGroup
		snapFiles         map[string][]byte
		snapErr, suiteErr error
		cfgDoc            any
		probes            map[string]diag.Result
		probeErrs         map[string]error
		suite             any
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		snap, err := s.Gather(ctx)
		if err != nil {
			snapErr = err
			return
		}
		snapFiles, snapErr = snapshotFiles(snap)
	}()
	go func() {
		defer wg.Done()
		if st == nil {
			cfgDoc = map[string]string{"error": "no device state: " + stErr.Error()}
			return
		}
		cfg, err := s.Config(ctx, st)
		if err != nil {
			cfgDoc = map[string]string{"error": err.Error()}
		} else {
			cfgDoc = cfg
		}
		c := cfg
		if err != nil {
			c = st.Config // the last known configuration still names the hub
		}
		p, perr := s.Probes(ctx, c)
		probes, probeErrs = p, perr
	}()
	go func() {
		defer wg.Done()
		if s.Suite == nil {
			return
		}
		suite, suiteErr = s.Suite(ctx)
	}()
	wg.Wait()

	if snapErr != nil {
		b.Note("snapshot: %v", snapErr)
	}
	for n, data := range snapFiles {
		b.Add(DirSnapshot+"/"+n, data)
	}
	if err := b.AddJSON(FileConfig, cfgDoc); err != nil {
		return nil, nil, err
	}
	if probes == nil {
		probes = map[string]diag.Result{}
	}
	for n, err := range probeErrs {
		b.Note("probe %s: %v", n, err)
	}
	if err := b.AddJSON(FileProbes, probes); err != nil {
		return nil, nil, err
	}
	if suiteErr != nil {
		b.Note("diagnosis suite: %v", suiteErr)
		suite = nil
	}
	if err := b.AddJSON(FileDiag, suite); err != nil {
		return nil, nil, err
	}

	status, err := s.Status(s.StateDir)
	if err != nil {
		b.Note("status: %v", err)
		if err := b.AddJSON(FileStatus, map[string]string{"error": err.Error()}); err != nil {
			return nil, nil, err
		}
	} else if err := b.AddJSON(FileStatus, status); err != nil {
		return nil, nil, err
	}

	logs, err := s.Logs(ctx, s.StateDir)
	if err != nil {
		b.Note("logs: %v", err)
	}
	b.Add(FileLog, logs)
	return b, secrets, nil
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
