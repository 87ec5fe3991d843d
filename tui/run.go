package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"golang.org/x/term"

	"github.com/openvcpe/vcpe/provision"
)

// Installer runs an install; *provision.Engine is one.
type Installer interface {
	Run(ctx context.Context) (provision.Summary, error)
}

// NewEngine builds the install Engine for one run, asking the operator
// through p and reporting through emit (set it as Engine.Emit). The steps
// call p; the wizard never runs a step itself.
type NewEngine func(p provision.Prompter, emit func(provision.Event)) Installer

// File is a terminal's side: *os.File.
type File interface {
	io.ReadWriter
	Fd() uintptr
}

// Options are where the wizard runs. The zero value means the process's
// standard input and output and environment.
type Options struct {
	In  File     // keys; must be a terminal
	Out File     // the screen
	Env []string // NO_COLOR, TERM, …
}

// ErrNoTTY is returned at once when standard input is not a terminal: the
// wizard cannot ask anything, and scripts must use --yes.
var ErrNoTTY = errors.New("standard input is not a terminal, so the install wizard cannot ask its questions; " +
	"run `vcpe install --yes` with --controller, --controller-fingerprint, --sn, --advertise and the key on stdin or in --key-file (or VCPE_* variables or --config)")

// ErrQuit is returned when the operator quits before the install started.
var ErrQuit = errors.New("the wizard was quit before the install started; nothing was changed")

// Mode is how the wizard draws.
type Mode int

// Modes.
const (
	ModeTUI   Mode = iota // full screen (alternate screen), colour if allowed
	ModePlain             // line by line, no cursor movement: TERM=dumb, no colour profile
)

// Detect picks the mode and colour profile for the terminal, or returns
// ErrNoTTY.
func Detect(o Options) (Mode, colorprofile.Profile, error) {
	o = o.withDefaults()
	if !term.IsTerminal(int(o.In.Fd())) {
		return 0, 0, ErrNoTTY
	}
	p := colorprofile.Detect(o.Out, o.Env)
	if p <= colorprofile.NoTTY {
		return ModePlain, p, nil
	}
	return ModeTUI, p, nil
}

func (o Options) withDefaults() Options {
	if o.In == nil {
		o.In = os.Stdin
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	return o
}

// Run runs the install wizard: it checks for a terminal (ErrNoTTY without
// one), then runs the Engine built by newEngine in a goroutine and shows
// its events and prompts, full screen or, on a dumb terminal, line by line.
// When ctx ends or the operator quits while the Engine runs, the Engine's
// context is cancelled and Run waits for its rollback before returning.
// It returns the Engine's summary and error, or ErrQuit when the operator
// quit before starting.
func Run(ctx context.Context, newEngine NewEngine, o Options) (provision.Summary, error) {
	o = o.withDefaults()
	mode, profile, err := Detect(o)
	if err != nil {
		return provision.Summary{}, err
	}
	if mode == ModePlain {
		// The terminal stays in cooked mode: ctrl+c is a SIGINT. Turn it
		// (and SIGTERM) into a cancel so the Engine rolls back, and put
		// the terminal back (echo on) even if a key prompt was cut short.
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		if st, err := term.GetState(int(o.In.Fd())); err == nil {
			defer term.Restore(int(o.In.Fd()), st)
		}
		return RunPlain(ctx, newEngine, o.Out, o.In, secretReader(o.In))
	}
	return runTUI(ctx, newEngine, o, profile)
}

func runTUI(ctx context.Context, newEngine NewEngine, o Options, profile colorprofile.Profile) (provision.Summary, error) {
	engCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	bridge := &Bridge{}
	var (
		once     sync.Once
		started  = make(chan struct{})
		finished = make(chan struct{})
		sum      provision.Summary
		runErr   error
	)
	start := func() {
		once.Do(func() {
			close(started)
			go func() {
				defer close(finished)
				sum, runErr = newEngine(bridge, bridge.Emit).Run(engCtx)
				bridge.Send(engineDoneMsg{Summary: sum, Err: runErr})
			}()
		})
	}
	m := newModel(profile, start, cancel)
	m.animate = true
	p := tea.NewProgram(m,
		tea.WithInput(o.In), tea.WithOutput(o.Out), tea.WithEnvironment(o.Env),
		tea.WithColorProfile(profile), tea.WithFilter(quitFilter))
	bridge.Send = p.Send
	ended := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			p.Send(quitRequestMsg{force: true})
		case <-ended:
		}
	}()
	_, perr := p.Run()
	close(ended)
	cancel()
	select {
	case <-started:
		<-finished // the Engine has rolled back whatever it did
	default:
		if perr == nil {
			return provision.Summary{}, ErrQuit
		}
	}
	if perr != nil && !errors.Is(perr, tea.ErrProgramKilled) {
		if runErr == nil {
			runErr = fmt.Errorf("terminal: %w", perr)
		}
	}
	return sum, runErr
}

// quitFilter turns a quit the model did not ask for (SIGTERM, SIGINT) into
// a forced quit request, so the Engine is cancelled and rolls back before
// the program exits.
func quitFilter(m tea.Model, msg tea.Msg) tea.Msg {
	mm, ok := m.(*Model)
	if !ok || mm.exitOK {
		return msg
	}
	switch msg.(type) {
	case tea.QuitMsg, tea.InterruptMsg:
		return quitRequestMsg{force: true}
	}
	return msg
}

// secretReader reads a line without echo when f is a terminal.
func secretReader(f File) func() (string, error) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return func() (string, error) {
		b, err := term.ReadPassword(fd)
		return string(b), err
	}
}
