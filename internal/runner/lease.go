package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/msgrunner/msgrunner/internal/db"
)

// Lease defaults. A runner renews its lease every LeaseTTL/5 and stops
// working its jobs once it has failed to renew for LeaseTTL/2, so by the
// time the lease expires (LeaseTTL after the last renewal, by Postgres's
// clock) its jobs have had LeaseTTL/2 to return from their cancelled
// contexts. Other runners hand a dead runner's jobs back RescueGrace after
// its lease ended.
const (
	// DefaultLeaseTTL: a killed runner's jobs are worked again about
	// LeaseTTL + RescueGrace + one scan (≤ LeaseTTL/3) after its last
	// renewal: about 22 s with the defaults.
	DefaultLeaseTTL = 15 * time.Second
	// DefaultRescueGrace is added to a lease's end before its jobs are
	// handed back: slack for a renewal statement still in flight.
	DefaultRescueGrace = 2 * time.Second
	// leasePruneAfter: ended leases holding no job are deleted after a day
	// (kept that long so operators can see which runner held what).
	leasePruneAfter = 24 * time.Hour
	// rescueBatch bounds the jobs one rescue statement hands back.
	rescueBatch = 1000
)

// newRunnerID names a runner process: host, pid and a random suffix, so a
// restarted process (or a runner rejoining after losing its lease) never
// reuses an id that running jobs may still point to.
func newRunnerID(base string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	if base == "" {
		host, _ := os.Hostname()
		base = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	return base + "_" + hex.EncodeToString(b[:])
}

// leaseMetrics counts lease losses and rescued jobs.
type leaseMetrics struct {
	losses  prometheus.Counter
	rescued *prometheus.CounterVec
}

func newLeaseMetrics(reg prometheus.Registerer) (*leaseMetrics, error) {
	m := &leaseMetrics{
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "msgrunner_runner_lease_losses_total",
			Help: "Times this runner failed to keep its lease and cancelled its running jobs.",
		}),
		rescued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msgrunner_jobs_rescued_total",
			Help: "Jobs handed back by this runner: of runners whose lease ended, or that it lost track of when a database connection was lost; by kind and new state.",
		}, []string{"kind", "state"}),
	}
	for _, c := range []prometheus.Collector{m.losses, m.rescued} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// leaseLoop renews the current lease, fences the runner when it cannot,
// and hands back the jobs of runners whose leases ended. It returns when
// ctx ends.
func (r *Runner) leaseLoop(ctx context.Context, lastRenewal time.Time) {
	renewEvery := r.cfg.LeaseTTL / 5
	rescueEvery := min(r.cfg.LeaseTTL/3, 5*time.Second)
	renew := time.NewTicker(renewEvery)
	defer renew.Stop()
	rescue := time.NewTicker(rescueEvery)
	defer rescue.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			sent := time.Now()
			ok, err := r.renew(ctx, renewEvery)
			switch {
			case ok:
				lastRenewal = sent
			case ctx.Err() != nil:
				return
			case err == nil:
				// Refused: the lease ended (a pause longer than the TTL,
				// or an operator revoked it); its jobs may be someone
				// else's already.
				r.fence(ctx, "lease expired or revoked")
				lastRenewal = time.Now()
				if r.stopping.Load() {
					return
				}
			case time.Since(lastRenewal) >= r.cfg.LeaseTTL/2:
				r.fence(ctx, "could not renew the lease: "+err.Error())
				lastRenewal = time.Now()
				if r.stopping.Load() {
					return
				}
			default:
				r.logger.Warn("runner lease renewal failed; retrying", slog.String("error", err.Error()),
					slog.Duration("since_last_renewal", time.Since(lastRenewal).Round(time.Millisecond)))
			}
		case <-rescue.C:
			r.rescueOrphans(ctx)
			r.rescueLost(ctx)
			if time.Since(lastPrune) > time.Hour {
				lastPrune = time.Now()
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if _, err := db.PruneLeases(pctx, r.pool, leasePruneAfter); err != nil && ctx.Err() == nil {
					r.logger.Warn("pruning runner leases failed", slog.String("error", err.Error()))
				}
				cancel()
			}
		}
	}
}

func (r *Runner) renew(ctx context.Context, timeout time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.mu.Lock()
	lease := r.lease
	r.mu.Unlock()
	return db.RenewLease(ctx, r.pool, lease)
}

// rescueOrphans hands back jobs held by runners whose leases ended, a
// batch at a time until a batch comes back short.
func (r *Runner) rescueOrphans(ctx context.Context) {
	handBack := func(ctx context.Context) ([]db.RescuedJob, error) {
		return db.RescueOrphanedJobs(ctx, r.pool, r.cfg.RescueGrace, rescueBatch)
	}
	for r.rescue(ctx, "jobs of runners whose lease ended", handBack) == rescueBatch {
		// a full batch: there may be more
	}
}

// rescueLost hands back the jobs shown as running under this runner's
// current id that it is not working: attempted more than a lease TTL ago
// and not run by its workers now or in the last TTL. A fetch whose answer
// was lost with a database connection leaves such jobs (River never got
// them), and so does a completion whose commit was lost (a failover of an
// asynchronously committing primary). Without this they would stay
// running until River's own rescuer, RescueStuckJobsAfter later, since the
// runner's lease stays alive.
func (r *Runner) rescueLost(ctx context.Context) {
	keep := r.cfg.LeaseTTL
	working, id := r.working.ids(keep), r.ID()
	r.rescue(ctx, "jobs runner "+id+" lost track of when a database connection was lost", func(ctx context.Context) ([]db.RescuedJob, error) {
		return db.RescueLostJobs(ctx, r.pool, id, working, keep, rescueBatch)
	})
}

// rescue runs one hand-back statement, counts and logs what it handed
// back, and returns how many.
func (r *Runner) rescue(ctx context.Context, what string, handBack func(context.Context) ([]db.RescuedJob, error)) int {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rescued, err := handBack(sctx)
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Warn("handing back "+what+" failed", slog.String("error", err.Error()))
		}
		return 0
	}
	for _, j := range rescued {
		r.leaseMetrics.rescued.WithLabelValues(j.Kind, j.State).Inc()
	}
	if len(rescued) > 0 {
		r.logger.Warn("handed back "+what, slog.Int("jobs", len(rescued)))
	}
	return len(rescued)
}

// fence stops working every job at once (their contexts are cancelled),
// ends the old lease so that whatever River could not hand back itself is
// rescued promptly, and rejoins under a new id with a new lease. It keeps
// trying until it has rejoined or ctx ends (the runner is shutting down).
func (r *Runner) fence(ctx context.Context, why string) {
	r.leaseMetrics.losses.Inc()
	old := r.currentClient()
	r.mu.Lock()
	oldID := r.lease.RunnerID
	r.mu.Unlock()
	r.logger.Error("runner lost its lease: cancelling its running jobs and rejoining under a new id",
		slog.String("runner_id", oldID), slog.String("reason", why))
	stopCtx, cancel := context.WithTimeout(ctx, r.cfg.LeaseTTL/2)
	if err := old.StopAndCancel(stopCtx); err != nil && ctx.Err() == nil {
		r.logger.Warn("stopping the fenced River client", slog.String("error", err.Error()))
	}
	cancel()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		if err := r.rejoin(ctx, oldID); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.logger.Warn("rejoining after losing the lease failed; retrying", slog.String("error", err.Error()))
			continue
		}
		return
	}
}

// rejoin ends oldID's lease and starts a new River client under a new id
// and lease.
func (r *Runner) rejoin(ctx context.Context, oldID string) error {
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.StopLease(octx, r.pool, oldID); err != nil {
		return err
	}
	r.mu.Lock()
	lease := r.lease
	r.mu.Unlock()
	lease.RunnerID = newRunnerID(r.idBase)
	ok, err := db.RenewLease(octx, r.pool, lease)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("a brand-new lease was refused")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping.Load() {
		return nil // shutting down: nothing to rejoin
	}
	client, err := r.newClient(lease.RunnerID)
	if err != nil {
		return err
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("starting River client: %w", err)
	}
	r.lease = lease
	r.client.Store(client)
	r.logger.Info("runner rejoined with a new lease", slog.String("runner_id", lease.RunnerID), slog.String("previous_id", oldID))
	return nil
}
