// Package device is a device's own identity and its side of the controller's
// device API: the on-host state (device.json: SN, WireGuard private key,
// credential, last configuration; 0600, written atomically), the pinned
// HTTPS client of the device API, and registration by challenge-response.
//
// It sits just above the leaves (api, internal/atomicfile): the dataplane
// daemon, the diagnosis suite and the install Engine all read device state
// through it, so it must not import any of them.
package device
