package bench

import (
	"sync"
	"time"
)

// memTracker follows the resident memory of a topology's tunnel daemons,
// by role: idle after set-up, the most seen under load, and the peak.
type memTracker struct {
	mu  sync.Mutex
	mem map[string]*ProcMemory
}

// idle records each daemon's resident memory before any load.
func (m *memTracker) idle(ds []*proc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mem = map[string]*ProcMemory{}
	for _, d := range ds {
		rss, _, err := procRSS(d.pid())
		if err != nil {
			return err
		}
		m.mem[d.role] = &ProcMemory{Role: d.role, IdleKiB: rss}
	}
	return nil
}

// sample raises each daemon's load figure to its resident memory now.
func (m *memTracker) sample(ds []*proc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range ds {
		if rss, _, err := procRSS(d.pid()); err == nil && m.mem[d.role] != nil && rss > m.mem[d.role].LoadKiB {
			m.mem[d.role].LoadKiB = rss
		}
	}
}

// report returns the figures, each with the daemon's peak (VmHWM) now.
func (m *memTracker) report(ds []*proc) []ProcMemory {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ProcMemory
	for _, d := range ds {
		pm := m.mem[d.role]
		if pm == nil {
			continue
		}
		if _, hwm, err := procRSS(d.pid()); err == nil {
			pm.PeakKiB = hwm
		}
		out = append(out, *pm)
	}
	return out
}

// sampleEvery calls f every half second until stop is called; stop
// returns once f is no longer running.
func sampleEvery(f func()) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				f()
			}
		}
	}()
	return func() { close(done); <-ended }
}
