// Package bundle writes the support bundle of a device (vcpe diag bundle):
// one tar.gz an on-call engineer can attach to a ticket and that
// `vcpe diag --from-bundle` analyses offline. Its layout is a contract:
//
//	manifest.json   Manifest: version, host, time, every other file with its size and SHA-256
//	snapshot/       the precheck snapshot, in precheck.Snapshot.Save's layout (precheck.Load reads it)
//	status.json     dataplane.Status (from vcped's control socket, or the state file when vcped is down)
//	state.json      device.State with private_key and credential replaced by "[redacted]"
//	config.json     the controller's answer to GET /v1/device/config, or {"error": "..."}
//	probes.json     a few probes to the hub: name → diag.Result
//	logs/vcped.log  the tail of vcped's log (its log file, or journalctl -u vcped)
//	diag.json       the diagnosis suite's findings, or null
//
// Secrets never enter a bundle: every file is scrubbed of the device key,
// the WireGuard private key (base64 and hex) and the device credential
// before it is written, and the archive is written 0600.
//
// bundle only reads the host and asks the controller and hub; it must not
// change anything on the host other than writing the archive.
package bundle
