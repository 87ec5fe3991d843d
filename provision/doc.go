// Package provision is the device side of vcpe: the registration client,
// the on-host state (identity, keys, last known configuration), route
// planning, and the install Engine whose steps the TUI and --yes share.
//
// It must not render anything or prompt: callers own the terminal.
package provision
