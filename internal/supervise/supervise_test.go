package supervise

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunRestartsOneChildAtATime: a child that dies is started again
// after the restart delay; each child finds no other running (the marker
// it holds while it lives is free); the pid file names the supervisor;
// when the context ends the running child is stopped before Run returns.
func TestRunRestartsOneChildAtATime(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "starts")
	// Each child appends "start", fails if another child's marker exists,
	// lives 100 ms, then removes its marker and dies.
	script := `set -e; echo start >> ` + log + `; if [ -e ` + dir + `/alive ]; then echo twice >> ` + log + `; fi; touch ` + dir + `/alive; sleep 0.1; rm ` + dir + `/alive; exit 1`
	pidFile := filepath.Join(dir, "sup.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := Run(ctx, Options{Argv: []string{"/bin/sh", "-c", script}, PIDFile: pidFile, Restart: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Run took %v after its context ended", time.Since(start))
	}
	b, _ := os.ReadFile(log)
	starts := strings.Count(string(b), "start")
	if strings.Contains(string(b), "twice") {
		t.Error("two children ran at once")
	}
	// Three quick restarts at 100 ms, then the back-off: at least 3 starts
	// in 2 s, and far fewer than without a delay.
	if starts < 3 || starts > 12 {
		t.Errorf("%d starts in 2 s; want 3 to 12 (restart after 100 ms, back-off after three quick crashes)", starts)
	}
	if p, _ := os.ReadFile(pidFile); strings.TrimSpace(string(p)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file %q; want the supervisor's pid %d", p, os.Getpid())
	}
}

// TestRunEndsWhenTheChildIsStopped: a child that exits 0 (shut down as
// asked) is not restarted.
func TestRunEndsWhenTheChildIsStopped(t *testing.T) {
	log := filepath.Join(t.TempDir(), "starts")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Run(ctx, Options{Argv: []string{"/bin/sh", "-c", "echo start >> " + log}, Restart: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Error("Run went on after the child exited 0")
	}
	if b, _ := os.ReadFile(log); strings.Count(string(b), "start") != 1 {
		t.Errorf("%d starts; want 1", strings.Count(string(b), "start"))
	}
}
