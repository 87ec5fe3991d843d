// Package supervise keeps one child process running: it restarts the child
// soon after it dies, and never runs two at once (the next is started only
// after the last one was reaped). It is what `vcped --supervise` runs where
// systemd does not (containers, the lab): the supervisor writes its own pid
// file before it starts the child, and the child dies with it. It is a
// leaf: it imports nothing of vcpe.
package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Options configure Run.
type Options struct {
	Argv    []string // the child; Argv[0] an absolute path
	PIDFile string   // written with the supervisor's pid before the child starts; "" for none
	// Restart is the delay before a restart (500 ms). After three children
	// in a row ended within Healthy (1 s) of their start (a crash loop) the
	// delay doubles, up to MaxRestart (10 s), until one runs longer.
	Restart, Healthy, MaxRestart time.Duration
	// Stop is how long a child gets to end after SIGTERM (10 s).
	Stop time.Duration
	Log  *slog.Logger
}

// Run starts the child and restarts it whenever it crashes (a child that
// exits 0 or is stopped with SIGTERM or SIGINT ends Run too), until ctx ends;
// then it sends the child SIGTERM (SIGKILL after Stop) and returns once the
// child is reaped.
func Run(ctx context.Context, o Options) error {
	if len(o.Argv) == 0 || !filepath.IsAbs(o.Argv[0]) {
		return fmt.Errorf("supervise: program %v must be an absolute path", o.Argv)
	}
	if o.Restart == 0 {
		o.Restart = 500 * time.Millisecond
	}
	if o.Healthy == 0 {
		o.Healthy = time.Second
	}
	if o.MaxRestart == 0 {
		o.MaxRestart = 10 * time.Second
	}
	if o.Stop == 0 {
		o.Stop = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.PIDFile != "" {
		if err := writePID(o.PIDFile, os.Getpid()); err != nil {
			return err
		}
	}
	delay, quick := o.Restart, 0
	for {
		cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
		cmd.SysProcAttr = childAttr()
		started := time.Now()
		if err := cmd.Start(); err != nil {
			o.Log.Error("supervise: start", "program", o.Argv[0], "err", err)
		} else {
			o.Log.Info("supervise: started", "pid", cmd.Process.Pid)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if stopped(cmd.ProcessState) {
					// Someone asked the daemon to stop (an uninstall
					// signals it and its supervisor together): stop too,
					// rather than race the supervisor's own signal.
					o.Log.Info("supervise: child stopped by a signal; stopping", "pid", cmd.Process.Pid)
					return nil
				}
				o.Log.Warn("supervise: child ended; restarting", "pid", cmd.Process.Pid, "err", err, "after", delay)
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(o.Stop):
					_ = cmd.Process.Kill()
					<-done
				}
				return nil
			}
		}
		if time.Since(started) > o.Healthy {
			delay, quick = o.Restart, 0
		} else {
			quick++
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		if quick >= 3 {
			delay = min(delay*2, o.MaxRestart)
		}
	}
}

// stopped tells whether the child ended as asked to: exit status 0 (a
// daemon that shut down cleanly on SIGTERM) or killed by SIGTERM or
// SIGINT. Anything else is a crash.
func stopped(ps *os.ProcessState) bool {
	if ps.Success() {
		return true
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGINT)
}

func writePID(path string, pid int) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	_, err = f.WriteString(strconv.Itoa(pid) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}
