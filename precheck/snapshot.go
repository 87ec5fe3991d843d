package precheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Paths of the snapshot files (relative, slash-separated, as on a live host).
const (
	fileOSRelease     = "etc/os-release"
	fileRedhatRelease = "etc/redhat-release"
	fileCentOSRelease = "etc/centos-release"
	fileSSHDConfig    = "etc/ssh/sshd_config"
	fileOSReleaseK    = "proc/sys/kernel/osrelease"
	fileCPUInfo       = "proc/cpuinfo"
	fileMemInfo       = "proc/meminfo"
	fileTCP           = "proc/net/tcp"
	fileTCP6          = "proc/net/tcp6"
	fileUDP           = "proc/net/udp"
	fileUDP6          = "proc/net/udp6"
	fileRoute         = "proc/net/route"
	fileEchoIgnoreAll = "proc/sys/net/ipv4/icmp_echo_ignore_all"
	fileICMPRatelimit = "proc/sys/net/ipv4/icmp_ratelimit"
	fileICMPRatemask  = "proc/sys/net/ipv4/icmp_ratemask"
	fileIPForward     = "proc/sys/net/ipv4/ip_forward"
	fileIptables      = "cmd/iptables-save.txt"
	fileIp6tables     = "cmd/ip6tables-save.txt"
	fileNft           = "cmd/nft-ruleset.json"
	fileAddresses     = "vcpe/addresses.json"
	fileTC            = "vcpe/tc.json"
	fileSockets       = "vcpe/sockets.json"
	fileLinks         = "vcpe/links.json"
	fileMissing       = "vcpe/missing.json"
	dirSysClassNet    = "sys/class/net"
)

// plainFiles are the files gathered by reading the same path on a live host.
var plainFiles = []string{
	fileOSRelease, fileRedhatRelease, fileCentOSRelease, fileSSHDConfig,
	fileOSReleaseK, fileCPUInfo, fileMemInfo,
	fileTCP, fileTCP6, fileUDP, fileUDP6, fileRoute,
	fileEchoIgnoreAll, fileICMPRatelimit, fileICMPRatemask, fileIPForward,
}

// ifFiles are read for every interface under sys/class/net.
var ifFiles = []string{"operstate", "type", "mtu", "address", "uevent"}

// Snapshot is the raw host data the checks judge. Files are keyed by their
// slash-separated path relative to the host root (see the package doc).
type Snapshot struct {
	files   map[string][]byte
	missing map[string]string // path → why it was not gathered
	fwOnce  sync.Once
	fw      firewall // parsed once, shared by the checks

	// Live is true when the snapshot was gathered from this host just now;
	// only then do live-only checks (wan.internet) run.
	Live bool
}

// NewSnapshot returns a snapshot holding files (path → content).
func NewSnapshot(files map[string][]byte) *Snapshot {
	s := &Snapshot{files: map[string][]byte{}, missing: map[string]string{}}
	for p, b := range files {
		s.files[p] = b
	}
	if b, ok := s.files[fileMissing]; ok {
		_ = json.Unmarshal(b, &s.missing) // advisory only
	}
	return s
}

// MissingError says a snapshot file is absent and why.
type MissingError struct {
	Path   string
	Reason string
}

func (e *MissingError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s not available: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("%s is not in the snapshot", e.Path)
}

// Read returns the content of a snapshot file, or a *MissingError.
func (s *Snapshot) Read(p string) ([]byte, error) {
	if b, ok := s.files[p]; ok {
		return b, nil
	}
	return nil, &MissingError{Path: p, Reason: s.missing[p]}
}

// Has reports whether the snapshot holds a file.
func (s *Snapshot) Has(p string) bool { _, ok := s.files[p]; return ok }

// Files returns the paths held, sorted.
func (s *Snapshot) Files() []string {
	out := make([]string, 0, len(s.files))
	for p := range s.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// setMissing records why a file could not be gathered.
func (s *Snapshot) setMissing(p, reason string) { s.missing[p] = reason }

// Interfaces returns the names of the interfaces under sys/class/net, sorted.
func (s *Snapshot) Interfaces() []string {
	seen := map[string]bool{}
	for p := range s.files {
		rest, ok := strings.CutPrefix(p, dirSysClassNet+"/")
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(rest, "/"); ok {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func ifPath(name, file string) string { return path.Join(dirSysClassNet, name, file) }

// Save writes the snapshot to dir in the documented layout, creating dir
// when needed. Existing files of the same names are replaced.
func (s *Snapshot) Save(dir string) error {
	if len(s.missing) > 0 {
		b, err := json.MarshalIndent(s.missing, "", "  ")
		if err != nil {
			return fmt.Errorf("save snapshot: encode %s: %w", fileMissing, err)
		}
		s.files[fileMissing] = append(b, '\n')
	}
	for _, p := range s.Files() {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("save snapshot: %w", err)
		}
		if err := os.WriteFile(full, s.files[p], 0o644); err != nil {
			return fmt.Errorf("save snapshot: %w", err)
		}
	}
	return nil
}

// ErrNoSnapshot means the directory given to Load does not exist.
var ErrNoSnapshot = errors.New("no such snapshot directory")

// Load reads a snapshot saved by Save (or written by hand) from dir.
func Load(dir string) (*Snapshot, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load snapshot %s: %w", dir, ErrNoSnapshot)
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("load snapshot %s: not a directory", dir)
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			// A dangling symlink (for example a copied sys/class/net/IF/device)
			// still says the entry exists.
			if d.Type()&fs.ModeSymlink != 0 {
				b = nil
			} else {
				return err
			}
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", dir, err)
	}
	return NewSnapshot(files), nil
}
