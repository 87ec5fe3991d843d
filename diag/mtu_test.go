package diag

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
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

// lossyPath drops each answer of path with probability p (seeded).
func lossyPath(path func(seq, size int) ([]fakeAnswer, error), p float64, seed uint64) func(seq, size int) ([]fakeAnswer, error) {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 1))
	return func(seq, size int) ([]fakeAnswer, error) {
		mu.Lock()
		lost := r.Float64() < p
		mu.Unlock()
		if lost {
			return nil, nil
		}
		return path(seq, size)
	}
}

// TestSearchMTUUnderLoss: random loss (35 % of answers) does not pass for
// a black hole, nor hide a real one, nor make the target unreachable.
// Before each silent boundary was confirmed, one search in four on such a
// path in the lab reported a black hole somewhere below 1,500 bytes, or
// the hub unreachable; here, 25 of 100 on the full path and 67 of 100 on
// the black hole went wrong that way.
func TestSearchMTUUnderLoss(t *testing.T) {
	const runs = 100
	for _, c := range []struct {
		name    string
		pathMTU int
		verdict string
	}{
		{"full path", 1500, MTUFull},
		{"black hole at 1420", 1420, MTUBlackHole},
	} {
		t.Run(c.name, func(t *testing.T) {
			wrong, probes := 0, 0
			for i := range runs {
				conn := newFakeConn(lossyPath(fakePath(c.pathMTU, false, router, server), 0.35, uint64(i)))
				res, err := searchMTU(context.Background(), conn, server, MTUOptions{Max: 1500, Timeout: 3 * time.Millisecond, Tries: 2})
				probes += len(conn.sizes())
				if err != nil || res.MTU != c.pathMTU || res.Verdict != c.verdict {
					wrong++
					t.Logf("run %d: MTU %d (%s), err %v; steps %+v", i, res.MTU, res.Verdict, err, res.Steps)
				}
			}
			t.Logf("%d of %d searches wrong; %.1f probes a search", wrong, runs, float64(probes)/runs)
			if wrong > 0 {
				t.Errorf("%d of %d searches under 35%% loss wrong; want none", wrong, runs)
			}
		})
	}
}
