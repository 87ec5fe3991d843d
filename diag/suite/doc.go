// Package suite is the diagnosis suite behind `vcpe diag`: it gathers the
// Evidence once (host snapshot and precheck report, the daemon's status,
// the device state, the controller's answer, kernel routes and addresses,
// probes over the WAN and through the tunnel) and judges it with the pure
// Diagnose, which returns Findings ordered root cause first.
//
// It lives apart from package diag because it reads the device state
// (package provision), which itself uses diag's probes.
//
// It must not change the host: every check is read-only, every probe is
// bounded in count and time, and secrets (private key, credential) never
// leave Collect: Evidence.Save writes the state redacted.
package suite
