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
//   - Every record lives in the store and in memory; a write goes to the
//     store first, inside the controller's lock, so memory never holds what
//     the store refused. On SQLite (the default) one process owns the store.
//     On PostgreSQL any number of replicas share it: memory is a cache at a
//     store revision, caught up on every LISTEN/NOTIFY announcement, and
//     every decision is made under the store's cluster-wide write lock on
//     the latest state (replica.go). Every replica presents a certificate
//     from one CA and tells devices one hub key, both kept in the store.
//   - Devices long-poll their configuration (?wait=GEN): the answer leaves
//     as soon as the generation changes, on any replica (watch.go).
//   - Each device slot gets its overlay address when the instance is made;
//     it keeps it across restarts, re-registration and key resets.
//   - The first registered device of an instance is its active device
//     (until failover arrives); the others are standby.
//   - Hub groups (hubgroup.go): hub processes register their own key and
//     endpoint; every instance is assigned a primary and a secondary hub,
//     stored so it never moves when hubs join. Until a hub registers,
//     devices and hubs are told what they were told before hub groups.
//   - CCN members learn each other's prefixes and the cloud-side prefixes;
//     an instance in no CCN learns only the overlay (its hub).
//   - Only api.DeviceKeySecret(key) is stored, never the key as printed,
//     and only the SHA-256 of device credentials.
//   - Wrong proofs back off per source address (up to 5 minutes) and per
//     SN (up to 30 seconds): an attacker can delay a real device's
//     registration by at most the SN cap, never lock it out.
//   - Rate limits (those back-offs, the challenges per source address and
//     the reach probes) are per replica, in memory: counting failures in
//     the database would turn a flood into database writes, the very load
//     throttling exists to avoid, and nothing depends on them for
//     correctness (a 160-bit key is not guessed). Behind a load balancer
//     an attacker gets at most one budget per replica. What must hold
//     everywhere is shared: a challenge is in the store and single-use
//     across replicas.
//
// It must not touch the network configuration of the host: the hub
// dataplane subscribes to HubConfig and does that.
package controller
