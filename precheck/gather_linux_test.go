package precheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type fakeRunner struct {
	mu    sync.Mutex
	calls []string
	out   map[string]string
	err   map[string]error
}

func (f *fakeRunner) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.Join(append([]string{name}, args...), " "))
	if err := f.err[name]; err != nil {
		return nil, err
	}
	return []byte(f.out[name]), nil
}

// TestGatherFilesAndCommands gathers from a fake root with a fake command
// runner: present files are kept byte for byte, absent ones and failed
// commands are recorded with the reason.
func TestGatherFilesAndCommands(t *testing.T) {
	root := t.TempDir()
	write := func(p, c string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/os-release", "ID=ubuntu\nVERSION_ID=\"22.04\"\n")
	write("proc/sys/kernel/osrelease", "6.8.0-45-generic\n")
	write("sys/class/net/eth9/operstate", "up\n")
	if err := os.Symlink("../../../devices/virtio9", filepath.Join(root, "sys/class/net/eth9/device")); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{
		out: map[string]string{"iptables-save": "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "nft": `{"nftables": []}`},
		err: map[string]error{"ip6tables-save": errors.New("Permission denied (you must be root)")},
	}
	s, err := Gather(context.Background(), GatherOptions{Runner: r, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Live {
		t.Error("a gathered snapshot is live")
	}
	if b, _ := s.Read(fileOSRelease); string(b) != "ID=ubuntu\nVERSION_ID=\"22.04\"\n" {
		t.Errorf("os-release = %q", b)
	}
	if !s.Has("sys/class/net/eth9/device") || !s.Has("sys/class/net/eth9/operstate") {
		t.Errorf("eth9 entries missing: %v", s.Interfaces())
	}
	if _, err := s.Read(fileMemInfo); err == nil || !strings.Contains(err.Error(), "not present on this host") {
		t.Errorf("meminfo: %v; want not present", err)
	}
	for _, c := range snapshotCommands {
		if _, lerr := exec.LookPath(c.name); lerr != nil {
			if _, err := s.Read(c.file); err == nil || !strings.Contains(err.Error(), "not found in PATH") {
				t.Errorf("%s not installed: %v", c.name, err)
			}
			continue
		}
		_, err := s.Read(c.file)
		switch c.name {
		case "ip6tables-save":
			if err == nil || !strings.Contains(err.Error(), "Permission denied") {
				t.Errorf("ip6tables-save failure not recorded: %v", err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", c.file, err)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, call := range r.calls {
		if call == "nft -j list ruleset" {
			return
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		t.Errorf("nft not run as 'nft -j list ruleset': %v", r.calls)
	}
}
