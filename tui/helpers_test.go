package tui

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/goldenfile"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
)

// driver runs a Model the way bubbletea does, synchronously: it applies a
// message, runs the returned commands and feeds their messages back.
// Commands that do not return at once (cursor blinks) are dropped after a
// short wait; no test depends on them.
type driver struct {
	t         testing.TB
	m         *Model
	starts    int
	cancelled bool
	// engine, when set, receives the Bridge's messages (see pump).
	engine chan tea.Msg
	quit   bool
}

func newDriver(t testing.TB, w, h int) *driver {
	t.Helper()
	d := &driver{t: t}
	d.m = newModel(colorprofile.ASCII, func() { d.starts++ }, func() { d.cancelled = true })
	d.send(tea.WindowSizeMsg{Width: w, Height: h})
	return d
}

// send applies a message and everything its commands produce.
func (d *driver) send(msg tea.Msg) {
	d.t.Helper()
	_, cmd := d.m.Update(msg)
	d.run(cmd)
}

// run executes a command tree; messages come back in order.
func (d *driver) run(cmd tea.Cmd) {
	d.t.Helper()
	if cmd == nil {
		return
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(100 * time.Millisecond):
		// A timer (cursor blink, 530ms): not needed by the tests. Real
		// commands return at once; 100ms leaves room for a loaded machine.
		return
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	case tea.QuitMsg:
		d.quit = true
	default:
		// tea.Sequence's message type is unexported: a slice of Cmd.
		if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice && v.Type().Elem() == reflect.TypeOf(tea.Cmd(nil)) {
			for i := 0; i < v.Len(); i++ {
				d.run(v.Index(i).Interface().(tea.Cmd))
			}
			return
		}
		if reflect.TypeOf(msg).PkgPath() == "charm.land/bubbletea/v2" && reflect.TypeOf(msg).Name() != "" && !handled(msg) {
			return // terminal requests (window size, colours) the test supplies itself
		}
		d.send(msg)
	}
}

// handled reports whether msg is an exported bubbletea message a model handles.
func handled(msg tea.Msg) bool {
	switch msg.(type) {
	case tea.KeyPressMsg, tea.WindowSizeMsg, tea.PasteMsg, tea.BackgroundColorMsg:
		return true
	}
	return false
}

func keyMsg(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// keys presses keys in order.
func (d *driver) keys(ks ...string) {
	d.t.Helper()
	for _, k := range ks {
		d.send(keyMsg(k))
	}
}

// paste types text into the focused field.
func (d *driver) paste(s string) { d.t.Helper(); d.send(tea.PasteMsg{Content: s}) }

// frame is the screen as text.
func (d *driver) frame() string { return ansi.Strip(d.m.render()) }

// pump delivers the Engine's messages until cond holds.
func (d *driver) pump(what string, cond func(*Model) bool) {
	d.t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond(d.m) {
		select {
		case msg := <-d.engine:
			d.send(msg)
		case <-deadline:
			d.t.Fatalf("timed out waiting for %s; screen:\n%s", what, d.frame())
		}
	}
}

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name+".golden"), []byte(got))
}

// checkFrame asserts the frame fits the terminal.
func checkFrame(t *testing.T, f string, w, h int) {
	t.Helper()
	lines := strings.Split(f, "\n")
	if len(lines) > h {
		t.Errorf("frame has %d lines; the terminal has %d", len(lines), h)
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			t.Errorf("line %d is %d cells wide; the terminal has %d: %q", i+1, ansi.StringWidth(l), w, l)
		}
	}
}

func ioPipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
