package dataplane

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// uapiPeer is one peer as wireguard-go's UAPI "get" reports it.
type uapiPeer struct {
	PublicKey     api.Key
	Endpoint      string
	LastHandshake time.Time // zero: never
	RxBytes       uint64
	TxBytes       uint64
	AllowedIPs    []netip.Prefix
	Keepalive     int
}

// parseUAPI parses the answer to a UAPI "get=1" (the key=value lines,
// without the trailing errno line).
func parseUAPI(s string) ([]uapiPeer, error) {
	var peers []uapiPeer
	var cur *uapiPeer
	var sec, nsec int64
	flush := func() {
		if cur != nil {
			if sec != 0 || nsec != 0 {
				cur.LastHandshake = time.Unix(sec, nsec)
			}
			peers = append(peers, *cur)
		}
		sec, nsec = 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("parse uapi: line %q has no '='", line)
		}
		if k == "public_key" {
			flush()
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != api.KeyLen {
				return nil, fmt.Errorf("parse uapi: bad public_key %q", v)
			}
			cur = &uapiPeer{PublicKey: api.Key(b)}
			continue
		}
		if cur == nil {
			continue // device-level key
		}
		var err error
		switch k {
		case "endpoint":
			cur.Endpoint = v
		case "last_handshake_time_sec":
			sec, err = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, err = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			cur.RxBytes, err = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			cur.TxBytes, err = strconv.ParseUint(v, 10, 64)
		case "persistent_keepalive_interval":
			cur.Keepalive, err = strconv.Atoi(v)
		case "allowed_ip":
			var p netip.Prefix
			p, err = netip.ParsePrefix(v)
			cur.AllowedIPs = append(cur.AllowedIPs, p)
		}
		if err != nil {
			return nil, fmt.Errorf("parse uapi: %s=%q: %w", k, v, err)
		}
	}
	flush()
	return peers, sc.Err()
}
