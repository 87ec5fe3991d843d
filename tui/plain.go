package tui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/x/ansi"
	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/components"
	"github.com/openvcpe/vcpe/tui/pages"
)

// plainWidth is the width plain output wraps at.
const plainWidth = 78

// Plain renders Engine events line by line, with no colour and no cursor
// movement: the wizard on a dumb terminal (TERM=dumb, no colour profile).
// Every line carries its status as a word.
type Plain struct {
	W  io.Writer
	mu sync.Mutex
}

// Emit prints one event; use it as Engine.Emit.
func (p *Plain) Emit(ev provision.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	word := string(ev.Kind)
	if ev.Kind == provision.EventFinished {
		word = string(ev.Status)
	}
	if ev.Message != "" {
		fmt.Fprintf(p.W, "[%s] %s: %s\n", ev.Step, word, ev.Message)
	} else {
		fmt.Fprintf(p.W, "[%s] %s\n", ev.Step, word)
	}
	switch d := ev.Data.(type) {
	case precheck.Result:
		p.result(d)
	case *precheck.Result:
		p.result(*d)
	}
	for _, pr := range probesOf(ev.Data, ev.Message) {
		if pr.Done || pr.Err != "" {
			fmt.Fprintf(p.W, "  %s %s\n", stateWord(pr.State()), pr.Summary())
		}
	}
}

func (p *Plain) result(r precheck.Result) {
	if r.Title != "" {
		fmt.Fprintf(p.W, "  %-4s %s: %s\n", r.Status, r.ID, r.Title)
	} else {
		fmt.Fprintf(p.W, "  %-4s %s\n", r.Status, r.ID)
	}
	if r.Status != precheck.Pass && r.Detail != "" {
		fmt.Fprintf(p.W, "       %s\n", r.Detail)
	}
	if r.Fix != "" && (r.Status == precheck.Warn || r.Status == precheck.Fail) {
		fmt.Fprintf(p.W, "       fix: %s\n", r.Fix)
	}
}

func stateWord(s components.State) string {
	switch s {
	case components.OK:
		return "ok"
	case components.Warn:
		return "warn"
	case components.Fail:
		return "FAIL"
	case components.Running:
		return "run"
	}
	return "-"
}

// LinePrompter asks the Engine's questions line by line (plain mode).
// Input lines come from R; ReadSecret, when set, reads the device key
// without echo (a terminal), otherwise the key is read as a line.
type LinePrompter struct {
	Out        *Plain
	R          *bufio.Reader
	ReadSecret func() (string, error)
}

var _ provision.Prompter = (*LinePrompter)(nil)

// errEOF is returned when the input ends before an answer.
var errEOF = errors.New("standard input ended before the question was answered; nothing was changed")

// read waits for a line (or ctx).
func (l *LinePrompter) read(ctx context.Context, secret bool) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		if secret && l.ReadSecret != nil {
			s, err := l.ReadSecret()
			l.printf("\n")
			ch <- res{s, err}
			return
		}
		s, err := l.R.ReadString('\n')
		if err == io.EOF && s != "" {
			err = nil
		}
		ch <- res{strings.TrimRight(s, "\r\n"), err}
	}()
	select {
	case r := <-ch:
		if errors.Is(r.err, io.EOF) {
			return "", errEOF
		}
		return strings.TrimSpace(r.s), r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (l *LinePrompter) printf(format string, a ...any) {
	l.Out.mu.Lock()
	defer l.Out.mu.Unlock()
	fmt.Fprintf(l.Out.W, format, a...)
}

// AfterPrecheck prints the report and asks continue / re-run / abort.
// Failed checks leave only re-run and abort.
func (l *LinePrompter) AfterPrecheck(ctx context.Context, rep precheck.Report) (provision.PrecheckDecision, error) {
	c := rep.Counts()
	l.printf("precheck: %d passed, %d warning(s), %d failed, %d not checked\n", c[precheck.Pass], c[precheck.Warn], c[precheck.Fail], c[precheck.Skip])
	for _, r := range rep.Checks {
		if r.Status != precheck.Pass {
			l.Out.mu.Lock()
			l.Out.result(r)
			l.Out.mu.Unlock()
		}
	}
	for {
		if c[precheck.Fail] > 0 {
			l.printf("Failed checks block the install. Apply the fixes, then [r]e-run, or [a]bort: ")
		} else {
			l.printf("[c]ontinue, [r]e-run the checks, or [a]bort: ")
		}
		s, err := l.read(ctx, false)
		if err != nil {
			return provision.PrecheckAbort, err
		}
		switch strings.ToLower(s) {
		case "c", "continue":
			if c[precheck.Fail] == 0 {
				return provision.PrecheckContinue, nil
			}
			l.printf("cannot continue: %d check(s) failed\n", c[precheck.Fail])
		case "r", "rerun", "re-run":
			return provision.PrecheckRerun, nil
		case "a", "abort":
			return provision.PrecheckAbort, nil
		}
	}
}

// ask asks for one value until check accepts it; def is used for an
// empty answer.
func (l *LinePrompter) ask(ctx context.Context, prompt, def string, secret bool, check func(string) error) (string, error) {
	for {
		if def != "" && !secret {
			l.printf("%s [%s]: ", prompt, def)
		} else {
			l.printf("%s: ", prompt)
		}
		s, err := l.read(ctx, secret)
		if err != nil {
			return "", err
		}
		if s == "" {
			s = def
		}
		if err := check(s); err != nil {
			l.printf("  %v\n", err)
			continue
		}
		return s, nil
	}
}

// Registration asks for the controller, fingerprint, SN, key and LAN
// prefixes, validating each with the provision validators.
func (l *LinePrompter) Registration(ctx context.Context, s provision.Suggestions) (provision.Registration, error) {
	reg := s.Given
	var err error
	if reg.Controller, err = l.ask(ctx, "Controller URL", s.Given.Controller, false, pages.CheckController); err != nil {
		return reg, err
	}
	fp, err := l.ask(ctx, "Controller CA fingerprint (sha256:…)", s.Given.Fingerprint, false, pages.CheckFingerprint)
	if err != nil {
		return reg, err
	}
	reg.Fingerprint, _ = device.ParseFingerprint(fp)
	if reg.SN, err = l.ask(ctx, "Serial number (SN)", s.Given.SN, false, api.ValidateSN); err != nil {
		return reg, err
	}
	if s.Given.Key.IsZero() {
		key, err := l.ask(ctx, "Device key (not shown)", "", true, func(v string) error {
			if v == "" {
				return &api.InputError{Field: "key", Msg: "missing; paste the key issued with the SN"}
			}
			return nil
		})
		if err != nil {
			return reg, err
		}
		reg.Key = provision.NewSecret(key)
	}
	def := s.Given.Advertise
	if len(def) == 0 {
		def = s.LANPrefixes
	}
	var ds []string
	for _, p := range def {
		ds = append(ds, p.String())
	}
	adv, err := l.ask(ctx, "LAN prefixes to advertise", strings.Join(ds, ", "), false, func(v string) error {
		_, err := provision.ParseAdvertise([]string{v})
		return err
	})
	if err != nil {
		return reg, err
	}
	reg.Advertise, _ = provision.ParseAdvertise([]string{adv})
	if len(s.Interfaces) == 0 {
		return reg, nil
	}
	l.printf("This host's interfaces:\n%s\n", strings.Join(pages.InterfaceLines(s.Interfaces, plainWidth), "\n"))
	wan, lan := pages.InterfaceDefaults(s, reg.Advertise)
	if reg.WANInterface, err = l.ask(ctx, "WAN interface", wan, false, func(v string) error {
		return provision.ValidateInterface("--wan-if", v, s.Interfaces)
	}); err != nil {
		return reg, err
	}
	if reg.LANInterface, err = l.ask(ctx, "LAN interface", lan, false, func(v string) error {
		return pages.CheckLANInterface(v, reg.WANInterface, s.Interfaces)
	}); err != nil {
		return reg, err
	}
	return reg, nil
}

var (
	_ provision.AttachPrompter  = (*LinePrompter)(nil)
	_ provision.LockoutPrompter = (*LinePrompter)(nil)
)

// Attach asks whether the site has two devices and, if so, for the
// shared gateway and the LAN hosts to watch.
func (l *LinePrompter) Attach(ctx context.Context, q provision.AttachQuestion) (provision.Attach, error) {
	l.printf("%s\n", ansi.Wrap(pages.AttachIntro(q), plainWidth, ""))
	two, gw, ts := pages.AttachDefaults(q)
	def := "n"
	if two {
		def = "y"
	}
	yn, err := l.ask(ctx, "This site has two devices (an active one and a standby)? [y/n]", def, false, func(v string) error {
		switch strings.ToLower(v) {
		case "y", "yes", "n", "no":
			return nil
		}
		return errors.New("answer y or n")
	})
	if err != nil || strings.HasPrefix(strings.ToLower(yn), "n") {
		return provision.Attach{}, err
	}
	var a provision.Attach
	if gw, err = l.ask(ctx, "Shared LAN gateway ADDR/LEN", gw, false, func(v string) error { return pages.CheckSharedGateway(v, q) }); err != nil {
		return a, err
	}
	a.LANGateway, _ = provision.ParseLANGateway(gw, q.LAN)
	if ts, err = l.ask(ctx, "LAN hosts to watch (comma separated)", ts, false, func(v string) error {
		_, err := provision.ParseLANTargets([]string{v})
		return err
	}); err != nil {
		return a, err
	}
	a.LANTargets, _ = provision.ParseLANTargets([]string{ts})
	return a, nil
}

// OverrideLockout explains the lockout and overrides it only when the
// operator types "force".
func (l *LinePrompter) OverrideLockout(ctx context.Context, e *provision.LockoutError) (bool, error) {
	l.printf("%s\n", strings.Join(pages.LockoutLines(*e, func(s ...string) string { return strings.Join(s, " ") }, plainWidth), "\n"))
	for {
		l.printf("Type force to install anyway, or n to stop with nothing changed: ")
		s, err := l.read(ctx, false)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(s) {
		case "force":
			return true, nil
		case "n", "no":
			return false, nil
		}
	}
}

// Confirm prints the plan and asks to apply it.
func (l *LinePrompter) Confirm(ctx context.Context, p provision.Plan) error {
	l.printf("%s\n", strings.Join(pages.PlanLines(p, plainWidth, func(s string) string { return s }), "\n"))
	for {
		l.printf("Apply these changes? [y/n]: ")
		s, err := l.read(ctx, false)
		if err != nil {
			return err
		}
		switch strings.ToLower(s) {
		case "y", "yes":
			return nil
		case "n", "no":
			return provision.ErrDeclined
		}
	}
}

// RunPlain runs the install line by line: events printed by Plain, prompts
// asked by LinePrompter. readSecret may be nil (the key is then read as a
// line).
func RunPlain(ctx context.Context, newEngine NewEngine, out io.Writer, in io.Reader, readSecret func() (string, error)) (provision.Summary, error) {
	pl := &Plain{W: out}
	lp := &LinePrompter{Out: pl, R: bufio.NewReader(in), ReadSecret: readSecret}
	sum, err := newEngine(lp, pl.Emit).Run(ctx)
	fmt.Fprintln(out)
	for _, line := range pages.DoneLines(sum, err, nil, nil, components.Styles{}, plainWidth) {
		fmt.Fprintln(out, strings.TrimRight(line, " "))
	}
	return sum, err
}
