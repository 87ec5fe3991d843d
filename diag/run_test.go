package diag

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestRunCollectsSamples(t *testing.T) {
	tgt := netip.MustParseAddr("198.18.0.1")
	c := newFakeConn(func(seq, size int) ([]fakeAnswer, error) {
		switch seq {
		case 1: // lost
			return nil, nil
		case 2: // duplicated
			return []fakeAnswer{{ev: event{from: tgt, size: size}}, {delay: 2 * time.Millisecond, ev: event{from: tgt, size: size}}}, nil
		case 3:
			return []fakeAnswer{{ev: event{from: router, icmp: newICMPError(3, 3, router, 0)}}}, nil
		case 4:
			return nil, errors.New("message too long")
		}
		return []fakeAnswer{{delay: time.Millisecond, ev: event{from: tgt, size: size}}}, nil
	})
	var mu sync.Mutex
	var seen []string
	o, _ := Options{Count: 6, Interval: 5 * time.Millisecond, Timeout: 100 * time.Millisecond,
		OnSample: func(s Sample) { mu.Lock(); seen = append(seen, s.Status()); mu.Unlock() }}.withDefaults()
	samples, err := run(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	st := Summarize(samples)
	want := Stats{Sent: 6, Received: 3, Errors: 2, Duplicates: 1}
	if st.Sent != want.Sent || st.Received != want.Received || st.Errors != want.Errors || st.Duplicates != want.Duplicates {
		t.Errorf("stats %+v; want sent/received/errors/duplicates %+v", st, want)
	}
	if st.Min <= 0 || st.Max < st.Min {
		t.Errorf("RTTs min %v max %v", st.Min, st.Max)
	}
	status := map[int]string{}
	for _, s := range samples {
		if !s.Duplicate {
			status[s.Seq] = s.Status()
		}
	}
	wantStatus := map[int]string{0: "reply", 1: "lost", 2: "reply", 3: "icmp-error", 4: "send-error", 5: "reply"}
	for seq, w := range wantStatus {
		if status[seq] != w {
			t.Errorf("seq %d: %q; want %q", seq, status[seq], w)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 7 { // 3 replies, 1 duplicate, 1 icmp error, 1 send error, 1 lost
		t.Errorf("OnSample called %d times (%v); want 7", len(seen), seen)
	}
}

// TestRunStopsOnCancel runs in a synctest bubble: the cancel comes after
// 30 ms of the bubble's clock, whatever the machine's load.
func TestRunStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeConn(func(int, int) ([]fakeAnswer, error) { return nil, nil })
		ctx, cancel := context.WithCancel(context.Background())
		o, _ := Options{Count: 1000, Interval: 10 * time.Millisecond}.withDefaults()
		go func() { time.Sleep(30 * time.Millisecond); cancel() }()
		samples, err := run(ctx, c, o)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(c.sizes()); n >= 1000 || len(samples) != n {
			t.Errorf("sent %d probes, %d samples after cancel", n, len(samples))
		}
	})
}

func TestOptionsValidation(t *testing.T) {
	for name, o := range map[string]Options{
		"count":  {Count: -1},
		"count2": {Count: MaxCount + 1},
		"ttl":    {TTL: 300},
		"source": {Source: netip.MustParseAddr("2001:db8::1")},
		"int":    {Interval: -time.Second},
	} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%s: %+v accepted", name, o)
		}
	}
	if _, err := PingICMP(context.Background(), netip.MustParseAddr("2001:db8::1"), Options{}); err == nil {
		t.Error("PingICMP to IPv6: no error")
	}
	if _, err := PingUDP(context.Background(), netip.MustParseAddrPort("198.18.0.1:12345"), Options{Size: 30}); err == nil {
		t.Error("PingUDP with a size below the header: no error")
	}
}
