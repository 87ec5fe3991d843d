// Package suite is the diagnosis suite behind `vcpe diag`: it gathers the
// Evidence once (host snapshot and precheck report, the daemon's status,
// the device state, the controller's answer, kernel routes and addresses,
// probes over the WAN and through the tunnel) and judges it with the pure
// Diagnose, which returns Findings ordered root cause first.
//
// It lives apart from package diag because it reads the device state
// (package internal/device) and the daemon's status (package dataplane),
// which diag's probes do not need. The support bundle that carries the
// Evidence to another machine is package diag/bundle's.
//
// It must not change the host: every check is read-only, every probe is
// bounded in count and time, and secrets (private key, credential) never
// leave Collect's Evidence except through the bundle, which redacts them.
package suite
