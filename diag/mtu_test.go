package diag

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSearchMTU(t *testing.T) {
	tests := []struct {
		name       string
		pathMTU    int
		fragNeeded bool
		max        int
		wantMTU    int
		verdict    string
		maxProbes  int
	}{
		{name: "full path", pathMTU: 1500, fragNeeded: true, max: 1500, wantMTU: 1500, verdict: MTUFull, maxProbes: 2},
		{name: "frag needed jumps to the reported MTU", pathMTU: 1300, fragNeeded: true, max: 1500, wantMTU: 1300, verdict: MTUFragNeeded, maxProbes: 3},
		{name: "odd MTU found exactly", pathMTU: 1421, fragNeeded: true, max: 9000, wantMTU: 1421, verdict: MTUFragNeeded, maxProbes: 3},
		{name: "black hole found by bisection", pathMTU: 1300, fragNeeded: false, max: 1500, wantMTU: 1300, verdict: MTUBlackHole, maxProbes: 40},
		{name: "black hole, tunnel-sized", pathMTU: 1420, fragNeeded: false, max: 1500, wantMTU: 1420, verdict: MTUBlackHole, maxProbes: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeConn(fakePath(tt.pathMTU, tt.fragNeeded, router, server))
			res, err := searchMTU(context.Background(), c, server, MTUOptions{Max: tt.max, Timeout: 20 * time.Millisecond, Tries: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.MTU != tt.wantMTU || res.Verdict != tt.verdict {
				t.Errorf("MTU %d (%s); want %d (%s)\nsteps %+v", res.MTU, res.Verdict, tt.wantMTU, tt.verdict, res.Steps)
			}
			if n := len(c.sizes()); n > tt.maxProbes {
				t.Errorf("%d probes sent; want at most %d", n, tt.maxProbes)
			}
			if tt.verdict == MTUFragNeeded && res.Reporter != router {
				t.Errorf("reporter %v; want %v", res.Reporter, router)
			}
			if tt.verdict == MTUBlackHole && !strings.Contains(res.Detail, "black-holes") {
				t.Errorf("detail %q does not say black hole", res.Detail)
			}
			for _, s := range c.sizes() {
				if s > tt.max {
					t.Errorf("sent %d bytes, above max %d", s, tt.max)
				}
			}
		})
	}
}

func TestSearchMTUUnreachable(t *testing.T) {
	c := newFakeConn(func(int, int) ([]fakeAnswer, error) { return nil, nil })
	_, err := searchMTU(context.Background(), c, server, MTUOptions{Max: 1500, Timeout: 10 * time.Millisecond, Tries: 1})
	if err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Errorf("err = %v; want no reply", err)
	}
}

func TestSearchMTULocalTooBig(t *testing.T) {
	// The host itself refuses sizes above 1400 (EMSGSIZE), the path is fine.
	path := fakePath(9000, true, router, server)
	c := newFakeConn(func(seq, size int) ([]fakeAnswer, error) {
		if size > 1400 {
			return nil, errFakeMsgSize
		}
		return path(seq, size)
	})
	isMsgSizeHook = func(err error) bool { return err == errFakeMsgSize }
	defer func() { isMsgSizeHook = nil }()
	res, err := searchMTU(context.Background(), c, server, MTUOptions{Max: 1500, Timeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.MTU != 1400 || res.Verdict != MTULocal {
		t.Errorf("MTU %d (%s); want 1400 (local)", res.MTU, res.Verdict)
	}
}
