package bench

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// UAPIPeer is the one peer a bench tunnel end has.
type UAPIPeer struct {
	PublicKey  api.Key
	Endpoint   netip.AddrPort
	AllowedIPs []netip.Prefix
}

// UAPISet returns the WireGuard UAPI "set=1" request that gives a device
// its private key, listen port and exactly these peers (see
// https://www.wireguard.com/xplatform/). Keys are hex on this protocol.
func UAPISet(priv api.Key, port uint16, peers ...UAPIPeer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set=1\nprivate_key=%s\nlisten_port=%d\nreplace_peers=true\n", hex.EncodeToString(priv[:]), port)
	for _, peer := range peers {
		fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\nreplace_allowed_ips=true\n", hex.EncodeToString(peer.PublicKey[:]), peer.Endpoint)
		for _, p := range peer.AllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=%s\n", p)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// UAPIDo sends one request to the UAPI socket at path and checks that the
// answer is errno=0.
func UAPIDo(ctx context.Context, path, req string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("uapi %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return fmt.Errorf("uapi %s: write: %w", path, err)
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "errno="); ok {
			if v != "0" {
				return fmt.Errorf("uapi %s: device answered errno=%s", path, v)
			}
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("uapi %s: read: %w", path, err)
	}
	return fmt.Errorf("uapi %s: no errno in the answer", path)
}
