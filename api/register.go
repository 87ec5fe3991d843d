package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/netip"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// Registration is a challenge-response exchange; the device key never
// crosses the wire:
//
//	POST /v1/register/challenge  ChallengeRequest  → Challenge
//	POST /v1/register            RegisterRequest   → RegisterResponse
//
// The nonce is single-use and expires after Challenge.ExpiresIn seconds.
// Proof is RegistrationProof over the nonce, the SN, the device's WireGuard
// public key and its advertised prefixes, keyed with DeviceKeySecret(key).

// ChallengeRequest asks for a registration nonce.
type ChallengeRequest struct {
	SN string `json:"sn"`
}

// Challenge is the controller's single-use nonce. HubPublicKey is the
// hub's WireGuard public key, with which a device proves it holds its own
// WireGuard key (KeyProof) when it gives its slot back without the
// credential.
type Challenge struct {
	Nonce        string `json:"nonce"`
	ExpiresIn    int    `json:"expires_in"` // seconds
	HubPublicKey Key    `json:"hub_public_key,omitzero"`
}

// RegisterRequest proves knowledge of the device key for SN.
type RegisterRequest struct {
	SN        string         `json:"sn"`
	Nonce     string         `json:"nonce"`
	PublicKey Key            `json:"public_key"`
	Advertise []netip.Prefix `json:"advertise"`
	// ProbeAddrs are this device's own addresses inside Advertise, where
	// its probe reflector (UDP 12345) answers; other members of the CCN
	// probe them (DeviceConfig.Targets). They are not covered by Proof: a
	// diagnostics hint that the controller validates (each must lie inside
	// an advertised prefix), not a security claim, and a wrong one costs
	// nothing but a failed probe.
	ProbeAddrs []netip.Addr `json:"probe_addrs,omitempty"`
	// LANGateway is the multi-attach gateway ADDR/LEN the device will
	// hold while active (inside Advertise), told to the instance's other
	// devices (DeviceConfig.Peers) so they take the same one. Like
	// ProbeAddrs it is a validated hint, not covered by Proof.
	LANGateway netip.Prefix `json:"lan_gateway,omitzero"`
	Proof      []byte       `json:"proof"` // base64 in JSON
}

// RegisterResponse carries the device credential (bearer token for
// /v1/device/*) and the device's configuration.
type RegisterResponse struct {
	Credential string       `json:"credential"`
	Config     DeviceConfig `json:"config"`
}

// AdvertiseRequest is the body of POST /v1/device/routes.
type AdvertiseRequest struct {
	Advertise []netip.Prefix `json:"advertise"`
	// ProbeAddrs replace the device's probe addresses (see
	// RegisterRequest.ProbeAddrs).
	ProbeAddrs []netip.Addr `json:"probe_addrs,omitempty"`
}

// DeviceKeySecret derives the HMAC key from a device key as the operator
// received it (surrounding white space ignored). The controller stores only
// this value, never the key as printed.
func DeviceKeySecret(key string) []byte {
	h := sha256.New()
	h.Write([]byte("vcpe device key v1\x00"))
	h.Write([]byte(strings.TrimSpace(key)))
	return h.Sum(nil)
}

// RegistrationProof is HMAC-SHA256, keyed with secret (DeviceKeySecret),
// over the nonce, the SN, the WireGuard public key and the advertised
// prefixes in the order given. Each field is length-prefixed so no two
// inputs encode alike.
func RegistrationProof(secret []byte, nonce, sn string, pub Key, advertise []netip.Prefix) []byte {
	m := hmac.New(sha256.New, secret)
	field := func(s string) {
		var n [4]byte
		l := len(s)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		m.Write(n[:])
		m.Write([]byte(s))
	}
	field("vcpe-register-v1")
	field(nonce)
	field(sn)
	field(pub.String())
	for _, p := range advertise {
		field(p.String())
	}
	return m.Sum(nil)
}

// CheckProof reports, in constant time, whether proof is the right one.
func CheckProof(secret []byte, nonce, sn string, pub Key, advertise []netip.Prefix, proof []byte) bool {
	return hmac.Equal(RegistrationProof(secret, nonce, sn, pub, advertise), proof)
}

// ReleaseRequest gives a device's slot back without the credential (POST
// /v1/device/release with no Authorization header): the device proves it
// holds the WireGuard private key the SN is bound to. This is how an
// install that was killed, or whose registration answer never arrived,
// undoes its registration: the WireGuard key is written down before the
// registration is sent, the credential only after the answer.
type ReleaseRequest struct {
	SN        string `json:"sn"`
	Nonce     string `json:"nonce"` // from POST /v1/register/challenge
	PublicKey Key    `json:"public_key"`
	Proof     []byte `json:"proof"` // KeyProof; base64 in JSON
}

// ReleaseResponse says what a release did. Released is false when the SN
// was not bound to the key of the request (never registered from it, or
// already given back): there was nothing to undo.
type ReleaseResponse struct {
	Released bool `json:"released"`
}

// KeyProof is HMAC-SHA256, keyed with the X25519 shared secret of the
// device's WireGuard private key and the hub's public key, over the nonce,
// the SN and the device's public key. Only the holder of the device's
// private key (or of the hub's) can make it. It returns nil for a hub key
// of low order.
func KeyProof(priv, hubPub Key, nonce, sn string) []byte {
	shared, err := curve25519.X25519(priv[:], hubPub[:])
	if err != nil {
		return nil
	}
	return keyProof(shared, nonce, sn, priv.PublicKey())
}

// CheckKeyProof reports, in constant time, whether proof is KeyProof for
// the device public key devPub; hubPriv is the hub's private key.
func CheckKeyProof(hubPriv, devPub Key, nonce, sn string, proof []byte) bool {
	shared, err := curve25519.X25519(hubPriv[:], devPub[:])
	if err != nil {
		return false
	}
	return hmac.Equal(keyProof(shared, nonce, sn, devPub), proof)
}

func keyProof(shared []byte, nonce, sn string, pub Key) []byte {
	m := hmac.New(sha256.New, shared)
	for _, s := range []string{"vcpe-release-v1", nonce, sn, pub.String()} {
		var n [4]byte
		l := len(s)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		m.Write(n[:])
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}
