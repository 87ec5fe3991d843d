package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// StepID names a step of the install flow. The IDs are part of the
// --json contract.
type StepID string

// The install flow, in order.
const (
	StepPrecheck     StepID = "precheck"
	StepRegister     StepID = "register"
	StepPlan         StepID = "plan"
	StepReview       StepID = "review"
	StepApply        StepID = "apply"
	StepStart        StepID = "start"
	StepTunnel       StepID = "tunnel"
	StepConnectivity StepID = "connectivity"
	StepRollback     StepID = "rollback"
)

// EventKind says where in its step an event is.
type EventKind string

// Event kinds.
const (
	EventStarted  EventKind = "started"
	EventProgress EventKind = "progress"
	EventFinished EventKind = "finished"
)

// Status is how a step finished.
type Status string

// Step statuses.
const (
	StatusOK        Status = "ok"        // done, something changed or was verified
	StatusUnchanged Status = "unchanged" // nothing needed doing
	StatusWarn      Status = "warn"      // done, with warnings the operator should read
	StatusFailed    Status = "failed"
	StatusSkipped   Status = "skipped"
)

// Event is what the Engine tells its renderer (the TUI, or --yes's progress
// lines and JSON summary). Data carries the step's result document (a
// precheck report, a plan, probe results) for renderers that show more
// than the message.
type Event struct {
	Step    StepID    `json:"step"`
	Kind    EventKind `json:"kind"`
	Status  Status    `json:"status,omitempty"`
	Message string    `json:"message"`
	Data    any       `json:"data,omitempty"`
	Time    time.Time `json:"time"`
}

// Step is one stage of the install. Run does the work through r (which
// holds the journal every host change must go through) and returns how it
// went; an error fails the install and undoes everything done so far.
type Step struct {
	ID    StepID
	Title string
	Run   func(ctx context.Context, r *Run) (Status, string, error)
}

// Run is the state of one install run, shared by its steps.
type Run struct {
	Journal *Journal
	emit    func(Event)
	step    StepID
	// Values steps leave for later ones (the registration result, the plan).
	Values map[string]any
}

// Progress reports progress within the current step.
func (r *Run) Progress(msg string, data any) {
	r.emit(Event{Step: r.step, Kind: EventProgress, Message: msg, Data: data})
}

// StepResult is how one step ended, for the summary.
type StepResult struct {
	Step    StepID `json:"step"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Started is when the step began; DurationMS how long it took.
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
}

// Summary is the result of an install run: the --json document's core.
type Summary struct {
	OK         bool         `json:"ok"`
	Changed    bool         `json:"changed"`
	Steps      []StepResult `json:"steps"`
	Error      string       `json:"error,omitempty"`
	RolledBack bool         `json:"rolled_back,omitempty"`
}

// Engine runs the install steps in order and emits their events. The TUI
// and --yes both run it and only render what it emits, so they cannot
// drift apart.
type Engine struct {
	Steps   []Step
	Journal *Journal
	// Emit receives every event, in order, from the goroutine that called
	// Run. It must not block for long.
	Emit func(Event)
	Now  func() time.Time
	Log  *slog.Logger
}

// Run runs every step. When a step fails, or ctx is cancelled, every change
// recorded in the journal during this run is undone (a rollback event
// reports it) and the error is returned.
func (e *Engine) Run(ctx context.Context) (Summary, error) {
	now := e.Now
	if now == nil {
		now = time.Now
	}
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	emit := func(ev Event) {
		ev.Time = now()
		if e.Emit != nil {
			e.Emit(ev)
		}
	}
	var sum Summary
	// A run that was killed before it ended left changes whose outcome
	// may be unknown (a registration whose answer never came, a daemon
	// without a pid file): undo them first, then install afresh.
	if open := e.Journal.Interrupted(); open != nil && e.Journal.Len() > open.Start {
		log.Warn("undoing an interrupted install", "pid", open.PID, "started", open.Started)
		if err := e.rollback(emit, open.Start, fmt.Sprintf("undoing %d change(s) of an install that did not end (pid %d, started %s)",
			e.Journal.Len()-open.Start, open.PID, open.Started.Format(time.RFC3339))); err != nil {
			sum.Error = fmt.Sprintf("%s: %v", StepRollback, err)
			return sum, fmt.Errorf("undo the interrupted install: %w", err)
		}
	}
	startLen := e.Journal.BeginRun("install")
	r := &Run{Journal: e.Journal, emit: emit, Values: map[string]any{}}
	for _, s := range e.Steps {
		r.step = s.ID
		started := now()
		emit(Event{Step: s.ID, Kind: EventStarted, Message: s.Title})
		var (
			st  Status
			msg string
			err error
		)
		if err = ctx.Err(); err == nil {
			testPause("before:" + string(s.ID))
			st, msg, err = s.Run(ctx, r)
			testPause("after:" + string(s.ID))
		}
		if err != nil {
			st, msg = StatusFailed, err.Error()
		}
		emit(Event{Step: s.ID, Kind: EventFinished, Status: st, Message: msg})
		sum.Steps = append(sum.Steps, StepResult{Step: s.ID, Status: st, Message: msg,
			Started: started, DurationMS: float64(now().Sub(started).Microseconds()) / 1000})
		if err != nil {
			log.Warn("install step failed; rolling back", "step", s.ID, "err", err)
			sum.Error = fmt.Sprintf("%s: %v", s.ID, err)
			sum.RolledBack = true
			if rerr := e.rollback(emit, startLen, ""); rerr != nil {
				return sum, fmt.Errorf("%s: %w (and the rollback failed: %v)", s.ID, err, rerr)
			}
			return sum, fmt.Errorf("%s: %w", s.ID, err)
		}
	}
	// A run whose end cannot be recorded (a full disk) would look killed
	// to the next install, which would undo it: undo it now instead, so
	// nothing is left half-recorded.
	if err := e.Journal.EndRun(); err != nil {
		log.Warn("recording the end of the install failed; rolling back", "err", err)
		sum.Error = fmt.Sprintf("record the end of the install in the journal: %v", err)
		sum.RolledBack = true
		if rerr := e.rollback(emit, startLen, ""); rerr != nil {
			return sum, fmt.Errorf("record the end of the install in the journal: %w (and the rollback failed: %v)", err, rerr)
		}
		return sum, fmt.Errorf("record the end of the install in the journal: %w", err)
	}
	sum.OK = true
	sum.Changed = e.Journal.Len() > startLen
	return sum, nil
}

// rollback undoes the changes recorded since startLen. Changes from an
// earlier, completed install stay.
func (e *Engine) rollback(emit func(Event), startLen int, title string) error {
	n := e.Journal.Len() - startLen
	if title == "" {
		title = fmt.Sprintf("undoing %d change(s)", n)
	}
	emit(Event{Step: StepRollback, Kind: EventStarted, Message: title})
	// The rollback must run even though the install's context may be
	// cancelled (the operator pressed Ctrl-C): give it its own deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.Journal.UndoSince(ctx, startLen)
	st, msg := StatusOK, fmt.Sprintf("undid %d change(s); the host is as it was", n)
	if err == nil {
		err = e.Journal.EndRun()
	}
	if err != nil {
		// The run stays open in the journal: the next install adopts what
		// is left, and vcpe uninstall undoes it.
		st, msg = StatusFailed, err.Error()+"; what is left stays in the journal: run vcpe uninstall --yes (or the same install) again"
	}
	emit(Event{Step: StepRollback, Kind: EventFinished, Status: st, Message: msg})
	return err
}

// ErrDeclined is returned by a review step when the operator does not
// accept the plan.
var ErrDeclined = errors.New("the plan was declined; nothing was changed")
