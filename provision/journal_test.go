package provision

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/openvcpe/vcpe/internal/namespace"
)

type fakeSysctl map[string]string

func (f fakeSysctl) Get(k string) (string, error) { return f[k], nil }
func (f fakeSysctl) Set(k, v string) error        { f[k] = v; return nil }

func fixedNow() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

// snapshotTree returns every path under root with its mode and content.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJournalUndoRestoresExactly(t *testing.T) {
	root := t.TempDir()
	existing := filepath.Join(root, "etc", "vcpe.conf")
	if err := os.MkdirAll(filepath.Dir(existing), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(existing, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	sys := fakeSysctl{"net.ipv4.ip_forward": "0"}
	before := snapshotTree(t, root)

	stateDir := filepath.Join(root, "var", "lib", "vcpe")
	j, err := OpenJournal(stateDir, sys, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	mustChange := func(changed bool, err error) {
		t.Helper()
		if err != nil || !changed {
			t.Fatalf("changed=%v err=%v; want a change", changed, err)
		}
	}
	mustChange(j.MkdirAll(stateDir, 0o700))
	mustChange(j.SetSysctl("net.ipv4.ip_forward", "1"))
	mustChange(j.WriteFile(existing, []byte("new\n"), 0o600))
	mustChange(j.WriteFile(filepath.Join(stateDir, "device.json"), []byte("{}"), 0o600))
	if sys["net.ipv4.ip_forward"] != "1" {
		t.Fatalf("sysctl not set")
	}

	// A second journal opened from disk sees every change (undo works
	// from another process, as `vcpe uninstall` does).
	j2, err := OpenJournal(stateDir, sys, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if j2.Len() != 6 { // var, var/lib, var/lib/vcpe, sysctl, two files
		t.Fatalf("reopened journal has %d changes; want 6: %+v", j2.Len(), j2.Changes)
	}
	if err := j2.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sys["net.ipv4.ip_forward"] != "0" {
		t.Errorf("sysctl after undo = %q; want 0", sys["net.ipv4.ip_forward"])
	}
	after := snapshotTree(t, root)
	if len(after) != len(before) {
		t.Errorf("tree after undo has %d entries; before %d:\nbefore %v\nafter %v", len(after), len(before), before, after)
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: after undo %q; before %q", p, after[p], v)
		}
	}
}

func TestJournalNoChangeWhenAlreadySet(t *testing.T) {
	dir := t.TempDir()
	sys := fakeSysctl{"net.ipv4.ip_forward": "1"}
	j, _ := OpenJournal(dir, sys, fixedNow)
	if changed, err := j.SetSysctl("net.ipv4.ip_forward", "1"); changed || err != nil {
		t.Errorf("SetSysctl to the current value: changed=%v err=%v", changed, err)
	}
	f := filepath.Join(dir, "x")
	os.WriteFile(f, []byte("same"), 0o600)
	if changed, err := j.WriteFile(f, []byte("same"), 0o600); changed || err != nil {
		t.Errorf("WriteFile with identical content: changed=%v err=%v", changed, err)
	}
	if j.Len() != 0 {
		t.Errorf("journal recorded %d changes; want 0", j.Len())
	}
	if _, err := os.Stat(filepath.Join(dir, JournalFile)); !os.IsNotExist(err) {
		t.Errorf("an empty journal was written to disk: %v", err)
	}
}

func TestJournalKeepsWhatItCouldNotUndo(t *testing.T) {
	dir := t.TempDir()
	j, _ := OpenJournal(dir, fakeSysctl{}, fixedNow)
	sub := filepath.Join(dir, "sub")
	if _, err := j.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	// Something vcpe did not make lands in the directory: undo must not
	// delete it, and must say so.
	os.WriteFile(filepath.Join(sub, "operator-notes"), []byte("mine"), 0o600)
	err := j.Undo(context.Background())
	if err == nil {
		t.Fatal("undo of a non-empty directory reported success")
	}
	if _, serr := os.Stat(filepath.Join(sub, "operator-notes")); serr != nil {
		t.Errorf("undo deleted a file vcpe did not create: %v", serr)
	}
	if j.Len() != 1 {
		t.Errorf("journal keeps %d entries; want the 1 that failed", j.Len())
	}
}

func TestJournalRealSysctlInNamespace(t *testing.T) {
	ns := namespace.New(t)
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	runtime.LockOSThread()
	// The thread stays in the namespace until the test ends; a locked
	// thread that exits is discarded, so the root namespace is never
	// touched by what follows.
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	sys := ProcSysctl{}
	if v, _ := sys.Get("net.ipv4.ip_forward"); v != "0" {
		t.Fatalf("fresh namespace has ip_forward=%q; want 0", v)
	}
	j, _ := OpenJournal(t.TempDir(), sys, fixedNow)
	if _, err := j.SetSysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run("sysctl", "-n", "net.ipv4.ip_forward"); out != "1\n" {
		t.Errorf("ip_forward in the namespace = %q after SetSysctl; want 1", out)
	}
	if err := j.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run("sysctl", "-n", "net.ipv4.ip_forward"); out != "0\n" {
		t.Errorf("ip_forward in the namespace = %q after Undo; want 0", out)
	}
}
