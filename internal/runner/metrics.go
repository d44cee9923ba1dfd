package runner

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// jobMetrics is a River worker middleware that counts each run's outcome
// and times it, per kind. Being in the work path it never misses a run (an
// event subscription could drop events under load).
type jobMetrics struct {
	river.MiddlewareDefaults
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	wait     *prometheus.HistogramVec
}

func newJobMetrics(reg prometheus.Registerer) (*jobMetrics, error) {
	m := &jobMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msgrunner_job_runs_total",
			Help: "Job runs by kind, queue and outcome (completed, retried, discarded, cancelled, snoozed, interrupted).",
		}, []string{"kind", "queue", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "msgrunner_job_run_seconds",
			Help:    "Time a job's worker ran, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"kind"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "msgrunner_job_queue_wait_seconds",
			Help:    "Time from a job being due to its run starting, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 16),
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.wait} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Work implements rivertype.WorkerMiddleware.
func (m *jobMetrics) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if job.AttemptedAt != nil {
		m.wait.WithLabelValues(job.Kind).Observe(max(0, job.AttemptedAt.Sub(job.ScheduledAt).Seconds()))
	}
	start := time.Now()
	err := doInner(ctx)
	m.duration.WithLabelValues(job.Kind).Observe(time.Since(start).Seconds())
	m.runs.WithLabelValues(job.Kind, job.Queue, outcome(ctx, job, err)).Inc()
	return err
}

func outcome(ctx context.Context, job *rivertype.JobRow, err error) string {
	var cancel *rivertype.JobCancelError
	var snooze *rivertype.JobSnoozeError
	switch {
	case err == nil:
		return "completed"
	case errors.As(err, &cancel):
		return "cancelled"
	case errors.As(err, &snooze):
		return "snoozed"
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return "interrupted"
	case job.Attempt >= job.MaxAttempts:
		return "discarded"
	default:
		return "retried"
	}
}
