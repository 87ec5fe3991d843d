package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/atomicfile"
)

// TestKilledRunIsUndoneByTheNextInstall: a run that ended without
// EndRun (killed) leaves its changes and its open mark in the journal; the
// next Engine run undoes exactly those, leaving a completed install's
// changes, and then installs afresh.
func TestKilledRunIsUndoneByTheNextInstall(t *testing.T) {
	root := t.TempDir()
	sys := fakeSysctl{"net.ipv4.ip_forward": "0"}
	mustMkdir(t, filepath.Join(root, "etc"))
	before := snapshotTree(t, root)

	// The killed run: BeginRun, two changes, no EndRun.
	e := fakeInstall(t, root, sys, "")
	e.Journal.BeginRun("install")
	if _, err := e.Journal.MkdirAll(filepath.Join(root, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Journal.SetSysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(filepath.Join(root, "state"), sys, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if o := j.Interrupted(); o == nil || o.PID != os.Getpid() || o.Start != 0 {
		t.Fatalf("the killed run's mark: %+v; want this pid, start 0", o)
	}

	// The next install fails at the tunnel: it undid the killed run first,
	// then its own changes: the host is as before.
	e = fakeInstall(t, root, sys, StepTunnel)
	var events []Event
	e.Emit = func(ev Event) { events = append(events, ev) }
	if _, err := e.Run(context.Background()); err == nil {
		t.Fatal("injected failure not reported")
	}
	if len(events) == 0 || events[0].Step != StepRollback {
		t.Errorf("first event %+v; want the rollback of the killed run", events[0])
	}
	assertSameTree(t, before, snapshotTree(t, root))
	if sys["net.ipv4.ip_forward"] != "0" {
		t.Errorf("ip_forward %q; want 0", sys["net.ipv4.ip_forward"])
	}

	// A completed install is never undone by the next one.
	e = fakeInstall(t, root, sys, "")
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	j, _ = OpenJournal(filepath.Join(root, "state"), sys, fixedNow)
	if j.Interrupted() != nil || j.Len() == 0 {
		t.Fatalf("after a completed install: open %+v, %d changes", j.Interrupted(), j.Len())
	}
	e = fakeInstall(t, root, sys, "")
	if sum, err := e.Run(context.Background()); err != nil || sum.Changed {
		t.Errorf("second install: %+v, %v; want unchanged", sum, err)
	}
}

// TestRegistrationIntent: the intent is recorded once per key, its key is
// found again for the same SN and controller, and the journal holds it
// with mode 0600.
func TestRegistrationIntent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	j, err := OpenJournal(dir, fakeSysctl{}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := api.GeneratePrivateKey()
	ri := RegistrationIntent{Controller: "https://198.18.0.1:8443", Fingerprint: "sha256:ab", SN: "VC1", PrivateKey: priv}
	for range 2 {
		if err := j.RecordRegistration(dir, ri); err != nil {
			t.Fatal(err)
		}
	}
	if j.Len() != 1 {
		t.Errorf("%d entries; want the intent once", j.Len())
	}
	j, _ = OpenJournal(dir, fakeSysctl{}, fixedNow)
	if k, ok := j.RegistrationKey("VC1", "sha256:ab"); !ok || k != priv {
		t.Errorf("RegistrationKey = %v, %v; want the journalled key", k, ok)
	}
	if _, ok := j.RegistrationKey("VC2", "sha256:ab"); ok {
		t.Error("a key for another SN")
	}
	if fi, err := os.Stat(filepath.Join(dir, JournalFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode: %v, %v; want 0600", fi.Mode(), err)
	}
}

// TestJournalTempFilesAndCorrupt: only the temporary files of interrupted
// atomic writes are removed; a corrupt journal is a CorruptJournalError.
func TestJournalTempFilesAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".journal.json.tmp-123"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "keep.tmp-1"), []byte("x"), 0o600)
	if got := atomicfile.RemoveTemps(dir); len(got) != 1 || got[0] != ".journal.json.tmp-123" {
		t.Errorf("RemoveTemps = %v; want only the interrupted write's file", got)
	}
	os.WriteFile(filepath.Join(dir, JournalFile), []byte(`{"changes": [`), 0o600)
	_, err := OpenJournal(dir, fakeSysctl{}, fixedNow)
	var ce *CorruptJournalError
	if !errors.As(err, &ce) {
		t.Errorf("corrupt journal: %v; want a CorruptJournalError", err)
	}
}
