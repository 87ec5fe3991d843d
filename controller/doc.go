// Package controller is vcpe-hub's control plane: it issues serial numbers
// and keys for instances, registers devices by challenge-response, holds
// Cloud Connect Networks (CCNs) and the prefixes each instance advertises,
// and publishes the hub dataplane's desired state (api.HubConfig).
//
// It serves two APIs: the device API (HTTPS + JSON, the server certificate
// signed by a CA made at first start whose SHA-256 fingerprint devices pin)
// and the admin API (HTTP + JSON over a unix socket in the state directory,
// mode 0600, for vcpe-hub's admin commands).
//
// Decisions written down here:
//   - Every record lives in the store (SQLite by default) and in memory; a
//     write goes to the store first, inside the controller's lock, so memory
//     never holds what the store refused. One controller process per store.
//   - Each device slot gets its overlay address when the instance is made;
//     it keeps it across restarts, re-registration and key resets.
//   - The first registered device of an instance is its active device
//     (until failover arrives); the others are standby.
//   - CCN members learn each other's prefixes and the cloud-side prefixes;
//     an instance in no CCN learns only the overlay (its hub).
//   - Only api.DeviceKeySecret(key) is stored, never the key as printed,
//     and only the SHA-256 of device credentials.
//   - Wrong proofs back off per source address (up to 5 minutes) and per
//     SN (up to 30 seconds): an attacker can delay a real device's
//     registration by at most the SN cap, never lock it out.
//
// It must not touch the network configuration of the host: the hub
// dataplane subscribes to HubConfig and does that.
package controller
