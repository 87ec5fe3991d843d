// Package provision is the install Engine: the steps that turn a host into
// a vCPE (precheck, register, routes, hand-off to vcped, connectivity test),
// shared by the TUI wizard and `vcpe install --yes`, with the journal that
// records every host change before it is made so that uninstall and a
// failed install undo exactly what was done.
//
// It is the top library layer: it may import precheck, dataplane, diag and
// internal/device; nothing below it imports it. It must not render
// anything or prompt: callers own the terminal.
package provision
