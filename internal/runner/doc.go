// Package runner builds and runs the River client that works every queue:
// queue worker counts, fetch tuning, rescue of jobs left by dead runners,
// retention, graceful shutdown, and the /healthz and /readyz endpoints.
//
// # Fetch tuning
//
// River fetches at most as many jobs as a queue has free workers, and by
// default at most every 100 ms, which caps a queue at its worker count per
// 100 ms. Config sets a shorter fetch cooldown, which a queue's
// jobs.QueueSpec may lengthen (so the side-work queues fetch less often and
// take more jobs each time), and a poll interval that is only a fallback:
// new jobs normally arrive by LISTEN/NOTIFY.
//
// # Leases (lease.go)
//
// River's own rescuer retries a job only once it has run past both its
// timeout and RescueStuckJobsAfter, and cannot tell a dead runner from a
// slow job. So every Runner holds a lease in runner_leases, keyed by its
// River client id (the id in river_job.attempted_by), and a loop of its
// own does three things:
//
//   - renew the lease every LeaseTTL/5, by Postgres's clock;
//   - every min(LeaseTTL/3, 5 s), hand back jobs shown as running under a
//     runner whose lease ended more than RescueGrace ago (available with
//     an error entry naming that runner, or discarded on their last
//     attempt), and prune ended leases holding no job after a day;
//   - fence: when renewal fails for LeaseTTL/2, or is refused because the
//     lease already ended, stop the River client with its jobs' contexts
//     cancelled, end the old lease and rejoin with a new client under a
//     new id (newRunnerID adds a random suffix, so an id is never reused
//     while jobs may still point at it).
//
// A job under a live lease is never taken from its runner. Jobs held by an
// id without a lease row are left to River's rescuer. Shutdown ends the
// lease after River has handed its jobs back.
//
// # Metrics (metrics.go)
//
// A River worker middleware records every run's outcome, run time and queue
// wait, so no run is missed whatever its worker does; the lease loop counts
// lease losses and rescued jobs. Everything registers on Config.Registry,
// never the global registry.
package runner
