// Package tui is the `vcpe install` wizard: bubbletea views over the
// install Engine's events and prompts. Run starts the program, runs the
// Engine in a goroutine and answers its Prompter calls from the pages
// (welcome, precheck, registration, routes, review, apply, connectivity,
// done). On a dumb terminal it prints the same events line by line
// (RunPlain); without a terminal it returns ErrNoTTY at once.
//
// What the Engine's steps send for the wizard to show (Event.Data):
//   - precheck progress events carry a precheck.Result each, as checks
//     finish (the live list); the full report comes with
//     Prompter.AfterPrecheck, which the precheck step calls;
//   - connectivity progress events carry a components.Probe, a
//     []components.Probe or a bare diag.Result (named by its target);
//     the series grows from event to event, Done marks it complete;
//   - every step's started, progress and finished messages make the
//     progress list; a rollback event shows the undo.
//
// RunDiag is the live dashboard of `vcpe diag --tui` (diag.go): it draws
// the samples and findings of rounds of the diagnosis suite that the
// caller runs (a DiagRound); it never probes or judges anything itself.
//
// The package must not contain install logic: no step, no host change, no
// network I/O. It renders what the Engine emits and hands back what the
// operator decided, so the wizard and `vcpe install --yes` cannot drift
// apart. The only I/O is the terminal, and it happens in bubbletea.
package tui
