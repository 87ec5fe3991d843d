// Package bundle owns the support bundle of a device (vcpe diag bundle):
// its layout, file names, redaction, writing and reading. It is one tar.gz
// an on-call engineer can attach to a ticket, and `vcpe diag --from-bundle`
// judges it offline with the same Diagnose as the live run, on the same
// evidence, so it gives the same findings. Its layout is a contract:
//
//	manifest.json   Manifest: version, host, time, every other file with its size and SHA-256
//	evidence.json   suite.Evidence without the parts below: the time, the host's routes and
//	                links, the controller dial, targets, path MTU, outside-in check, and why
//	                each part that is missing could not be gathered
//	snapshot/       the precheck snapshot, in precheck.Snapshot.Save's layout (precheck.Load reads it)
//	status.json     dataplane.Status from vcped's control socket, or {"error": "..."} when it did not answer
//	state.json      device.State with private_key and credential replaced by "[redacted]", or {"error": "..."}
//	config.json     the controller's answer to GET /v1/device/config, or {"error": "..."}
//	probes.json     the probe series the diagnosis judged: name → diag.Result
//	logs/vcped.log  the tail of vcped's log (its log file, or journalctl -u vcped)
//	diag.json       the findings of the live run (suite.Report), or null
//
// Secrets never enter a bundle: every file is scrubbed of the device key,
// the WireGuard private key (base64 and hex) and the device credential
// before it is written, and the archive is written 0600. Read checks every
// file against the manifest's SHA-256 and bounds the number of entries,
// each file's size and the total.
//
// bundle only reads the host; it must not change anything on the host
// other than writing the archive.
package bundle
