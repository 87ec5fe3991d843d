package dataplane

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// waitSource long-polls: WaitDeviceConfig blocks until the test publishes
// a generation other than the one asked for, or fails while down.
type waitSource struct {
	mu    sync.Mutex
	cfg   api.DeviceConfig
	down  bool
	ch    chan struct{}
	waits []uint64
	polls int
}

func newWaitSource(gen uint64) *waitSource {
	return &waitSource{cfg: api.DeviceConfig{Generation: gen}, ch: make(chan struct{})}
}

func (w *waitSource) DeviceConfig(ctx context.Context) (api.DeviceConfig, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	if w.down {
		return api.DeviceConfig{}, errors.New("connection refused")
	}
	return w.cfg, nil
}

func (w *waitSource) WaitDeviceConfig(ctx context.Context, gen uint64, wait time.Duration) (api.DeviceConfig, error) {
	for {
		w.mu.Lock()
		w.waits = append(w.waits, gen)
		cfg, down, ch := w.cfg, w.down, w.ch
		w.mu.Unlock()
		if down {
			return api.DeviceConfig{}, errors.New("connection refused")
		}
		if cfg.Generation != gen {
			return cfg, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return cfg, nil
		}
	}
}

func (w *waitSource) set(f func(*waitSource)) {
	w.mu.Lock()
	f(w)
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

type syncEngine struct {
	mu      sync.Mutex
	applied []uint64
}

func (e *syncEngine) Apply(c api.DeviceConfig) error {
	e.mu.Lock()
	e.applied = append(e.applied, c.Generation)
	e.mu.Unlock()
	return nil
}
func (e *syncEngine) Revoke(string) {}
func (e *syncEngine) last() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.applied) == 0 {
		return 0
	}
	return e.applied[len(e.applied)-1]
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSyncerLongPolls: a change is applied as soon as the source answers
// the long-poll, with no polling interval in between; when the source
// goes away the last configuration stays, the status says since when,
// and syncing converges when it is back.
func TestSyncerLongPolls(t *testing.T) {
	src := newWaitSource(1)
	eng := &syncEngine{}
	s := NewSyncer(src, eng, 1)
	s.Interval = time.Hour // a poll would never come in time: only the long-poll can deliver
	s.Wait = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()

	eventually(t, "first long-poll", func() bool { src.mu.Lock(); defer src.mu.Unlock(); return len(src.waits) > 0 })
	src.set(func(w *waitSource) { w.cfg.Generation = 2 })
	eventually(t, "generation 2 applied", func() bool { return eng.last() == 2 })
	src.set(func(w *waitSource) { w.cfg.Generation = 3 })
	eventually(t, "generation 3 applied", func() bool { return eng.last() == 3 })

	// The controller goes away: the configuration stays and the status
	// says since when.
	s.Interval = 20 * time.Millisecond
	cancel()
	<-done
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	src.set(func(w *waitSource) { w.down = true })
	done = make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	eventually(t, "unreachable", func() bool { return s.Status().State == "controller unreachable" })
	st := s.Status()
	if st.UnreachableSince.Before(t0) || st.Generation != 3 || eng.last() != 3 {
		t.Errorf("while unreachable: since %v (test began %v), generation %d, applied %d; want since set, generation 3 kept", st.UnreachableSince, t0, st.Generation, eng.last())
	}
	var b bytes.Buffer
	WriteText(&b, Status{Sync: &st}, time.Now())
	if !strings.Contains(b.String(), "controller unreachable since ") || !strings.Contains(b.String(), "generation 3") {
		t.Errorf("status text does not say since when:\n%s", b.String())
	}
	// Back, with a change made meanwhile: converge.
	src.set(func(w *waitSource) { w.down = false; w.cfg.Generation = 4 })
	eventually(t, "converged", func() bool { return eng.last() == 4 && s.Status().State == "ok" })
	if st := s.Status(); !st.UnreachableSince.IsZero() {
		t.Errorf("unreachable since %v after recovery; want zero", st.UnreachableSince)
	}
	cancel()
	<-done
}
