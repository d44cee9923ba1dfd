package ratelimit_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/msgrunner/msgrunner/internal/clocktest"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/ratelimit"
)

// Two requests a second with a burst of three, per user, in Redis: every
// gateway node shares the budget. The clock is one the example moves; in
// production Config.Now is nil and Redis's own clock decides.
func ExampleLimiter_Allow() {
	ctx := context.Background()
	rdb, prefix, done, err := dbtest.NewRedis(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer done()
	clock := clocktest.New(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	l, err := ratelimit.New(rdb, ratelimit.Config{Prefix: prefix, PerSecond: 2, Burst: 3, Now: clock.Now})
	if err != nil {
		log.Fatal(err)
	}
	allow := func(user string) {
		res, err := l.Allow(ctx, user)
		if err != nil {
			log.Fatal(err)
		}
		if res.Allowed {
			fmt.Println(user, "allowed")
		} else {
			fmt.Println(user, "refused, retry after", res.RetryAfter, "(Retry-After:", res.RetryAfterSeconds(), "s)")
		}
	}
	for range 4 {
		allow("alice")
	}
	allow("bob")
	clock.Advance(500 * time.Millisecond)
	allow("alice")
	allow("alice")

	// Output:
	// alice allowed
	// alice allowed
	// alice allowed
	// alice refused, retry after 500ms (Retry-After: 1 s)
	// bob allowed
	// alice allowed
	// alice refused, retry after 500ms (Retry-After: 1 s)
}
