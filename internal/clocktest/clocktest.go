// Package clocktest is a clock that tests move by hand, for the code that
// takes a `func() time.Time` in place of time.Now (auth.WithClock,
// ratelimit.Config.Now): a test advances it past an expiry or a refill
// instead of sleeping until real time gets there.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a time that only moves when Advance or Set is called. The zero
// Clock reads the zero time; use New. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time. Its method value (c.Now) is what the code
// under test is given.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward when d is negative) and
// returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
