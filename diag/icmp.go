package diag

import (
	"context"
	"fmt"
	"net/netip"
)

// icmpIPHeaders is the IPv4 + ICMP echo header in front of the echo data.
const icmpIPHeaders = 20 + 8

// PingICMP sends ICMP echo requests to target and returns every sample and
// the summary. As root it uses a raw socket; otherwise an unprivileged ICMP
// socket, which the kernel allows only for groups in
// net.ipv4.ping_group_range. When neither is allowed the error says which
// sysctl to set.
func PingICMP(ctx context.Context, target netip.Addr, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if !target.Unmap().Is4() {
		return Result{}, fmt.Errorf("target %s: only IPv4 is supported", target)
	}
	target = target.Unmap()
	if o.Size < icmpIPHeaders || o.Size > 65535 {
		return Result{}, fmt.Errorf("size %d: an ICMP probe is %d to 65535 bytes (IP and ICMP headers included)", o.Size, icmpIPHeaders)
	}
	c, err := openICMP(ctx, target, o, pmtuFor(o.DF))
	if err != nil {
		return Result{}, err
	}
	defer c.close()
	samples, err := run(ctx, c, o)
	res := Result{Protocol: "icmp", Target: target, Size: o.Size, DF: o.DF, Samples: samples, Stats: Summarize(samples)}
	return res, err
}

// pmtuMode is the IP_MTU_DISCOVER setting of a probe socket.
type pmtuMode int

const (
	pmtuDont  pmtuMode = iota // never set DF: big probes are fragmented
	pmtuDo                    // set DF, honour the cached path MTU
	pmtuProbe                 // set DF, ignore the cached path MTU (path-MTU search)
)

func pmtuFor(df bool) pmtuMode {
	if df {
		return pmtuDo
	}
	return pmtuDont
}
