// Package components holds the reusable pieces of the vcpe terminal UI: a
// check list with spinners, a step progress list, and the probe widget (RTT
// sparkline, loss, jitter) shared by the install wizard and the `vcpe diag
// --tui` dashboard, plus the Styles and KeyMap types they are drawn with.
//
// Components are pure renderers of data handed to them: they must not do
// I/O, start goroutines or know about the install Engine. Meaning is never
// carried by colour alone: every state has a symbol and a word.
package components
