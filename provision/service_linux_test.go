package provision

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func getsid(pid int) (int, error) { return unix.Getsid(pid) }

func TestStartProcessDetachedAndUndo(t *testing.T) {
	root := t.TempDir()
	j, _ := OpenJournal(filepath.Join(root, "state"), fakeSysctl{}, fixedNow)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	spec := ProcessSpec{Argv: []string{sleep, "300"}, PIDFile: filepath.Join(root, "vcped.pid"), LogFile: filepath.Join(root, "vcped.log")}
	if changed, err := j.StartProcess(spec); err != nil || !changed {
		t.Fatalf("start: changed=%v err=%v", changed, err)
	}
	pid, ok := RunningPID(spec.PIDFile, sleep)
	if !ok {
		t.Fatal("daemon not running after StartProcess")
	}
	t.Cleanup(func() { _ = j.Undo(context.Background()) })
	if sid, _ := getsid(pid); sid != pid {
		t.Errorf("daemon session id %d; want its own session (%d)", sid, pid)
	}
	if changed, err := j.StartProcess(spec); err != nil || changed {
		t.Errorf("second start with the daemon running: changed=%v err=%v; want unchanged", changed, err)
	}
	if err := j.Undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := RunningPID(spec.PIDFile, sleep); !ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); target == sleep {
			t.Errorf("daemon %d still running after undo", pid)
		}
	}
	if _, err := os.Stat(spec.PIDFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after undo: %v", err)
	}
}
