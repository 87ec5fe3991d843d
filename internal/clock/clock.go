// Package clock is the project's one settable clock for tests. Code under
// test takes its time as a func() time.Time (an Options.Now field, for
// example); a test passes (*Fake).Now and moves time with Advance, so
// nothing sleeps to make time pass.
//
// It imports nothing of the project.
package clock

import (
	"sync"
	"time"
)

// Fake is a clock that moves only when told. It is safe for concurrent use.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a clock that reads t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the clock's time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
