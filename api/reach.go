package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// Outside-in reachability. A device (registered or not: precheck uses it
// first) asks the controller to probe the address the request came from:
//
//	POST /v1/reach  {"nonce": "<32 lower-case hex digits>"} → ReachResponse
//
// The controller sends ReachPayload(nonce) once to each of ReachPorts on the
// request's source address (a UDP datagram; a TCP connect and write), never
// to any other address, and answers what it sent. Requests are rate-limited
// per source address (CodeRateLimited with RetryAfter). Each datagram is
// smaller than the request that caused it, so the check cannot amplify.

// ReachPort is one port of the check.
type ReachPort struct {
	Proto string `json:"proto"` // "udp" or "tcp"
	Port  uint16 `json:"port"`
}

func (p ReachPort) String() string { return fmt.Sprintf("%s/%d", p.Proto, p.Port) }

// ReachPorts is the fixed list the controller probes: the WireGuard port,
// the reflector, and samples across 10000–10100 in both protocols.
var ReachPorts = []ReachPort{
	{"udp", 4500}, {"udp", 12345},
	{"udp", 10000}, {"udp", 10050}, {"udp", 10100},
	{"tcp", 10000}, {"tcp", 10050}, {"tcp", 10100},
}

// ReachNonceLen is the length of a nonce in hex digits (16 random bytes).
const ReachNonceLen = 32

// ReachRequest is the body of POST /v1/reach.
type ReachRequest struct {
	Nonce string `json:"nonce"`
}

// ReachProbe is what the controller did for one port.
type ReachProbe struct {
	ReachPort
	// Sent is true when the datagram left (UDP) or the connection was
	// made and the nonce written (TCP).
	Sent bool `json:"sent"`
	// Error is why not (TCP: "connection refused", "timeout", ...).
	Error string `json:"error,omitempty"`
}

// ReachResponse is the controller's answer.
type ReachResponse struct {
	// Target is the address the controller saw the request come from and
	// probed: the device's public address (after any NAT).
	Target netip.Addr   `json:"target"`
	Nonce  string       `json:"nonce"`
	Probes []ReachProbe `json:"probes"`
}

// reachMagic starts every reach payload.
const reachMagic = "vcpe-reach "

// ReachPayload is what the controller sends to each port.
func ReachPayload(nonce string) []byte { return []byte(reachMagic + nonce) }

// ParseReachRequest decodes and checks a request body.
func ParseReachRequest(b []byte) (ReachRequest, error) {
	var r ReachRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return ReachRequest{}, &Error{Code: CodeInvalidInput, Field: "nonce", Message: fmt.Sprintf("reach request: %v", err), Fix: `send {"nonce": "<32 hex digits>"}`}
	}
	if err := CheckReachNonce(r.Nonce); err != nil {
		return ReachRequest{}, err
	}
	return r, nil
}

// CheckReachNonce accepts exactly ReachNonceLen lower-case hex digits.
func CheckReachNonce(n string) error {
	if _, err := hex.DecodeString(n); err != nil || len(n) != ReachNonceLen || strings.ToLower(n) != n {
		return &Error{Code: CodeInvalidInput, Field: "nonce", Message: fmt.Sprintf("reach nonce %q is not %d lower-case hex digits", n, ReachNonceLen), Fix: "send 16 random bytes in hex"}
	}
	return nil
}

// IsReachPayload reports whether b is the reach payload of nonce.
func IsReachPayload(b []byte, nonce string) bool {
	return string(b) == reachMagic+nonce
}
