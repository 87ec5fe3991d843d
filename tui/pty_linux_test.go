package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/internal/namespace"
	"github.com/openvcpe/vcpe/provision"
)

// openPTY opens a pseudo-terminal pair: the wizard gets the terminal side,
// the test types into and reads the screen from the controller side.
func openPTY(t *testing.T, cols, rows int) (ptm, pts *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		namespace.Skipf(t, "no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		namespace.Skipf(t, "open pty %d: %v", n, err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}); err != nil {
		t.Fatalf("set pty size: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func TestDetectModes(t *testing.T) {
	_, pts := openPTY(t, 80, 24)
	for _, tc := range []struct {
		env     []string
		mode    Mode
		colours bool
	}{
		{[]string{"TERM=dumb"}, ModePlain, false},
		{[]string{}, ModePlain, false},
		{[]string{"TERM=xterm-256color", "NO_COLOR=1"}, ModeTUI, false},
		{[]string{"TERM=xterm-256color"}, ModeTUI, true},
	} {
		mode, prof, err := Detect(Options{In: pts, Out: pts, Env: tc.env})
		if err != nil || mode != tc.mode || hasColour(prof) != tc.colours {
			t.Errorf("%v: mode %v profile %v err %v; want mode %v, colour %v", tc.env, mode, prof, err, tc.mode, tc.colours)
		}
	}
}

// screen collects what the wizard writes to the terminal.
type screen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen int // output before this offset was matched already
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansi.Strip(s.buf.String())
}

// waitFor waits until text written since the last match shows what.
func (s *screen) waitFor(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		b := s.buf.Bytes()
		i := strings.Index(ansi.Strip(string(b[s.seen:])), what)
		if i >= 0 {
			s.seen = len(b)
		}
		s.mu.Unlock()
		if i >= 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%s", what, s.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runOnPTY runs Run on a real pseudo-terminal with the fake Engine.
func runOnPTY(t *testing.T, f *fakeFlow, env []string) (ptm *os.File, scr *screen, result func() (provision.Summary, error)) {
	t.Helper()
	ptm, pts := openPTY(t, 80, 24)
	scr = &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptm.Read(b)
			scr.mu.Lock()
			scr.buf.Write(b[:n])
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	type res struct {
		sum provision.Summary
		err error
	}
	done := make(chan res, 1)
	go func() {
		sum, err := Run(context.Background(), f.newEngine(t), Options{In: pts, Out: pts, Env: env})
		done <- res{sum, err}
	}()
	return ptm, scr, func() (provision.Summary, error) {
		select {
		case r := <-done:
			return r.sum, r.err
		case <-time.After(15 * time.Second):
			t.Fatalf("Run did not return; the terminal shows:\n%s", scr.text())
		}
		return provision.Summary{}, nil
	}
}

func typeKeys(t *testing.T, ptm *os.File, s string) {
	t.Helper()
	if _, err := ptm.WriteString(s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // keys typed quickly, one sequence per read
}

// walkToApply types the operator's way from the welcome page through
// precheck (continuing with continueKey), the registration form and the
// suggested routes, and confirms the plan: the Engine starts applying.
func walkToApply(t *testing.T, ptm *os.File, scr *screen, continueKey string) {
	t.Helper()
	scr.waitFor(t, "Turn this host into a vCPE")
	typeKeys(t, ptm, "\r")
	scr.waitFor(t, "you may continue despite them")
	typeKeys(t, ptm, continueKey)
	scr.waitFor(t, "Controller URL")
	for _, v := range []string{testController, testFingerprint, "SN-A-0001", "device-key"} {
		typeKeys(t, ptm, v)
		typeKeys(t, ptm, "\r")
	}
	scr.waitFor(t, "Found on this host's LAN interfaces")
	typeKeys(t, ptm, "\r")
	scr.waitFor(t, "Changes to this host")
	typeKeys(t, ptm, "y")
}

// TestRunOnARealTerminal drives the full-screen wizard through a
// pseudo-terminal, as an operator would: keys typed, the screen read.
func TestRunOnARealTerminal(t *testing.T) {
	f := newFakeFlow(t)
	ptm, scr, result := runOnPTY(t, f, []string{"TERM=xterm-256color", "NO_COLOR=1"})
	walkToApply(t, ptm, scr, "c")
	scr.waitFor(t, "site-b LAN")
	typeKeys(t, ptm, "\r")
	scr.waitFor(t, "Installed.")
	typeKeys(t, ptm, "\r")
	sum, err := result()
	if err != nil || !sum.OK {
		t.Fatalf("Run = %+v, %v; want OK", sum, err)
	}
	if strings.Contains(scr.text(), "device-key") {
		t.Error("the device key was echoed to the terminal")
	}
	if f.reg.Key.Reveal() != "device-key" {
		t.Errorf("the engine got key %q", f.reg.Key.Reveal())
	}
}

// TestRunOnARealTerminalQuitHalfWay quits while the tunnel comes up: the
// wizard asks, cancels the Engine, waits for its rollback and the host is
// as before.
func TestRunOnARealTerminalQuitHalfWay(t *testing.T) {
	f := newFakeFlow(t)
	f.block = provision.StepTunnel
	before := tree(t, f.root)
	ptm, scr, result := runOnPTY(t, f, []string{"TERM=xterm-256color"})
	walkToApply(t, ptm, scr, "\r")
	scr.waitFor(t, "waiting for the first handshake")
	typeKeys(t, ptm, "\x03") // ctrl+c
	scr.waitFor(t, "Quit now?")
	typeKeys(t, ptm, "y")
	sum, err := result()
	if !errors.Is(err, context.Canceled) || !sum.RolledBack {
		t.Fatalf("Run = %+v, %v; want cancelled and rolled back", sum, err)
	}
	assertTreeUnchanged(t, before, f.root)
}

// TestRunPlainOnADumbTerminal: TERM=dumb gets the line-by-line mode on
// the same terminal.
func TestRunPlainOnADumbTerminal(t *testing.T) {
	f := newFakeFlow(t)
	ptm, scr, result := runOnPTY(t, f, []string{"TERM=dumb"})
	scr.waitFor(t, "[c]ontinue, [r]e-run the checks, or [a]bort: ")
	for _, line := range []string{"c", testController, testFingerprint, "SN-A-0001", "device-key", "", "y"} {
		typeKeys(t, ptm, line+"\n")
	}
	sum, err := result()
	if err != nil || !sum.OK {
		t.Fatalf("Run = %+v, %v; want OK; terminal:\n%s", sum, err, scr.text())
	}
	scr.waitFor(t, "✓ Installed.") // the last lines
	if out := scr.text(); !strings.Contains(out, "[connectivity] warn: 1 of 3 targets unreachable") {
		t.Errorf("plain output lacks the connectivity result:\n%s", out)
	}
	scr.mu.Lock()
	raw := scr.buf.String()
	scr.mu.Unlock()
	if strings.Contains(raw, "\x1b[?1049h") || strings.Contains(raw, "device-key") {
		t.Errorf("plain mode used the alternate screen or echoed the key:\n%q", raw)
	}
}

// TestRunPlainInterruptRollsBack: in plain mode ctrl+c is a SIGINT; it
// cancels the install, which rolls back, and the terminal keeps its echo.
func TestRunPlainInterruptRollsBack(t *testing.T) {
	f := newFakeFlow(t)
	f.block = provision.StepTunnel
	before := tree(t, f.root)
	ptm, scr, result := runOnPTY(t, f, []string{"TERM=dumb"})
	scr.waitFor(t, "[c]ontinue, [r]e-run the checks, or [a]bort: ")
	for _, line := range []string{"c", testController, testFingerprint, "SN-A-0001", "device-key", "", "y"} {
		typeKeys(t, ptm, line+"\n")
	}
	scr.waitFor(t, "waiting for the first handshake")
	if err := unix.Kill(os.Getpid(), unix.SIGINT); err != nil {
		t.Fatal(err)
	}
	sum, err := result()
	if !errors.Is(err, context.Canceled) || !sum.RolledBack {
		t.Fatalf("Run = %+v, %v; want cancelled and rolled back", sum, err)
	}
	assertTreeUnchanged(t, before, f.root)
}

// TestRunPlainRestoresEchoAfterAnInterruptedKeyPrompt: cut short while
// reading the key (echo off), the terminal gets its echo back.
func TestRunPlainRestoresEchoAfterAnInterruptedKeyPrompt(t *testing.T) {
	f := newFakeFlow(t)
	ptm, scr, result := runOnPTY(t, f, []string{"TERM=dumb"})
	scr.waitFor(t, "[c]ontinue, [r]e-run the checks, or [a]bort: ")
	for _, line := range []string{"c", testController, testFingerprint, "SN-A-0001"} {
		typeKeys(t, ptm, line+"\n")
	}
	scr.waitFor(t, "Device key (not shown): ")
	time.Sleep(100 * time.Millisecond) // echo is off now
	if err := unix.Kill(os.Getpid(), unix.SIGINT); err != nil {
		t.Fatal(err)
	}
	if _, err := result(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v; want cancelled", err)
	}
	tio, err := unix.IoctlGetTermios(int(ptm.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("the terminal was left without echo")
	}
}
