package adminapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/validation"
)

// QueueMetrics are one queue's job counts in the earlier design's terms:
// waiting = available, active = running, delayed = scheduled + retryable
// (+ pending), failed = discarded, paused = available in a paused queue
// (waiting is then 0); cancelled is added.
type QueueMetrics struct {
	Waiting   int64 `json:"waiting"`
	Active    int64 `json:"active"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
	Delayed   int64 `json:"delayed"`
	Paused    int64 `json:"paused"`
	Cancelled int64 `json:"cancelled"`
}

func (m *QueueMetrics) add(o QueueMetrics) {
	m.Waiting += o.Waiting
	m.Active += o.Active
	m.Completed += o.Completed
	m.Failed += o.Failed
	m.Delayed += o.Delayed
	m.Paused += o.Paused
	m.Cancelled += o.Cancelled
}

// Metrics returns every queue's metrics and their totals.
func (s *Server) Metrics(ctx context.Context) (map[string]QueueMetrics, QueueMetrics, error) {
	return CollectMetrics(ctx, s.pool, s.cfg.Queues)
}

// CollectMetrics returns the metrics of every configured queue, every queue
// River has recorded and every queue holding jobs, and their totals, from
// two queries.
func CollectMetrics(ctx context.Context, q db.Querier, configured []string) (map[string]QueueMetrics, QueueMetrics, error) {
	counts, err := db.JobCounts(ctx, q)
	if err != nil {
		return nil, QueueMetrics{}, err
	}
	paused, err := db.KnownQueues(ctx, q)
	if err != nil {
		return nil, QueueMetrics{}, err
	}
	names := queueNames(configured, paused)
	for name := range counts {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	out := make(map[string]QueueMetrics, len(names))
	var total QueueMetrics
	for _, name := range names {
		c := counts[name]
		m := QueueMetrics{
			Waiting: c["available"], Active: c["running"], Completed: c["completed"], Failed: c["discarded"],
			Delayed: c["scheduled"] + c["retryable"] + c["pending"], Cancelled: c["cancelled"],
		}
		if paused[name] {
			m.Paused, m.Waiting = m.Waiting, 0
		}
		out[name] = m
		total.add(m)
	}
	return out, total, nil
}

func (s *Server) queueMetrics(c echo.Context) error {
	queues, total, err := s.Metrics(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"queues": queues, "totals": total, "timestamp": time.Now().UTC()})
}

func (s *Server) queueNames(ctx context.Context) ([]string, error) {
	known, err := db.KnownQueues(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	return queueNames(s.cfg.Queues, known), nil
}

// queueNames lists configured queues plus those River has recorded
// (known's keys), sorted.
func queueNames(configured []string, known map[string]bool) []string {
	names := slices.Clone(configured)
	for q := range known {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	slices.Sort(names)
	return names
}

// requireQueue answers 404 for a queue that is not configured, not known
// to River and holds no job (the queues /queue/metrics lists).
func (s *Server) requireQueue(ctx context.Context, name string) error {
	names, err := s.queueNames(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(names, name) {
		return nil
	}
	notFound := newError(http.StatusNotFound, "queue_not_found", "no queue named "+strconv.Quote(name))
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return notFound // no job can be in it: Postgres text cannot hold it
	}
	has, err := db.QueueHasJobs(ctx, s.pool, name)
	if err != nil {
		return err
	}
	if !has {
		return notFound
	}
	return nil
}

// Health is a queue's health over the window.
//
// A queue is judged by its worst kind: FailureRate is the highest
// failure rate (discarded ÷ finalized in the window) among the kinds it
// holds, leaving out the periodic sweeps (deliver-pending, index-pending,
// job-history), whose frequent runs would dilute it. A sweep is judged by
// staleness instead: one that has not completed for three of its
// intervals (or that failed and never completed) makes its queue at
// least degraded and is listed in StaleSweeps. The jobs of a paused queue
// count as Paused, not Waiting, and their age is not held against it.
type Health struct {
	Status                  string  `json:"status"` // healthy, degraded, unhealthy
	FailureRate             float64 `json:"failure_rate"`
	Completed               int64   `json:"completed"`
	Failed                  int64   `json:"failed"`
	Waiting                 int64   `json:"waiting"`
	Paused                  int64   `json:"paused"`
	OldestWaitingAgeSeconds float64 `json:"oldest_waiting_age_seconds"`
	// Kinds has each kind's figures over the window.
	Kinds map[string]KindHealth `json:"kinds,omitempty"`
	// StaleSweeps names the periodic sweeps that stopped completing.
	StaleSweeps []string `json:"stale_sweeps,omitempty"`
}

// KindHealth is one job kind's figures over the window.
type KindHealth struct {
	FailureRate float64 `json:"failure_rate"`
	Completed   int64   `json:"completed"`
	Failed      int64   `json:"failed"`
	// Periodic marks a sweep, judged by staleness rather than its rate.
	Periodic bool `json:"periodic,omitempty"`
}

func worse(a, b string) string {
	rank := map[string]int{"healthy": 0, "degraded": 1, "unhealthy": 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// health judges one queue from its kinds' figures (all of one queue).
func (s *Server) health(kinds []db.KindHealth, paused bool) Health {
	t := s.cfg.Health
	out := Health{Status: "healthy"}
	var oldest time.Duration
	for _, k := range kinds {
		out.Completed += k.Completed
		out.Failed += k.Discarded
		out.Waiting += k.Waiting
		oldest = max(oldest, k.OldestWaiting)
		if k.Kind == "" {
			continue
		}
		if out.Kinds == nil {
			out.Kinds = map[string]KindHealth{}
		}
		kh := KindHealth{Completed: k.Completed, Failed: k.Discarded}
		if n := k.Completed + k.Discarded; n > 0 {
			kh.FailureRate = float64(k.Discarded) / float64(n)
		}
		if every, ok := t.Sweeps[k.Kind]; ok {
			kh.Periodic = true
			stale := k.LastCompleted > 3*every || (k.LastCompleted < 0 && k.Discarded > 0)
			if stale {
				out.StaleSweeps = append(out.StaleSweeps, k.Kind)
			}
		} else {
			out.FailureRate = max(out.FailureRate, kh.FailureRate)
		}
		out.Kinds[k.Kind] = kh
	}
	if paused {
		out.Paused, out.Waiting, oldest = out.Waiting, 0, 0
	}
	out.OldestWaitingAgeSeconds = oldest.Seconds()
	switch {
	case out.FailureRate >= t.UnhealthyFailureRate || out.OldestWaitingAgeSeconds >= t.UnhealthyWaitSeconds:
		out.Status = "unhealthy"
	case out.FailureRate >= t.DegradedFailureRate || out.OldestWaitingAgeSeconds >= t.DegradedWaitSeconds || len(out.StaleSweeps) > 0:
		out.Status = "degraded"
	}
	return out
}

// queueHealth answers /queue/health and /queue/health/:queue: 503 when
// the answer is unhealthy, so a load balancer or probe can act on the
// status code alone; 200 for healthy and degraded. The body is the same
// either way.
func (s *Server) queueHealth(c echo.Context) error {
	ctx := c.Request().Context()
	var names []string
	one := c.Param("queue")
	if one != "" {
		if err := s.requireQueue(ctx, one); err != nil {
			return err
		}
		names = []string{one}
	} else {
		// Every queue /queue/metrics lists: a queue holding jobs that no
		// runner has recorded (none works it) is the one most in need of a
		// health check.
		all, _, err := s.Metrics(ctx)
		if err != nil {
			return err
		}
		for name := range all {
			names = append(names, name)
		}
		slices.Sort(names)
	}
	byQueue, paused, err := s.healthInputs(ctx, names)
	if err != nil {
		return err
	}
	sweeps := make(map[string]float64, len(s.cfg.Health.Sweeps))
	for kind, every := range s.cfg.Health.Sweeps {
		sweeps[kind] = every.Seconds()
	}
	thresholds := map[string]any{
		"degraded_failure_rate": s.cfg.Health.DegradedFailureRate, "unhealthy_failure_rate": s.cfg.Health.UnhealthyFailureRate,
		"degraded_oldest_waiting_age_seconds":  s.cfg.Health.DegradedWaitSeconds,
		"unhealthy_oldest_waiting_age_seconds": s.cfg.Health.UnhealthyWaitSeconds,
		"window_seconds":                       s.cfg.Health.Window.Seconds(),
		"sweep_interval_seconds":               sweeps,
	}
	code := func(status string) int {
		if status == "unhealthy" {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	if one != "" {
		h := s.health(byQueue[one], paused[one])
		return c.JSON(code(h.Status), map[string]any{
			"queue": one, "status": h.Status, "failure_rate": h.FailureRate, "completed": h.Completed, "failed": h.Failed,
			"waiting": h.Waiting, "paused": h.Paused, "oldest_waiting_age_seconds": h.OldestWaitingAgeSeconds,
			"kinds": h.Kinds, "stale_sweeps": h.StaleSweeps, "thresholds": thresholds,
		})
	}
	overall := "healthy"
	queues := make(map[string]Health, len(names))
	for _, name := range names {
		h := s.health(byQueue[name], paused[name])
		queues[name] = h
		overall = worse(overall, h.Status)
	}
	return c.JSON(code(overall), map[string]any{"status": overall, "queues": queues, "thresholds": thresholds})
}

// healthInputs reads what health judges the queues names by: each
// queue's kinds' figures over the window, and which queues are paused.
func (s *Server) healthInputs(ctx context.Context, names []string) (map[string][]db.KindHealth, map[string]bool, error) {
	stats, err := db.QueueKindHealthSince(ctx, s.pool, names, time.Now().Add(-s.cfg.Health.Window))
	if err != nil {
		return nil, nil, err
	}
	paused, err := db.KnownQueues(ctx, s.pool)
	if err != nil {
		return nil, nil, err
	}
	byQueue := map[string][]db.KindHealth{}
	for _, st := range stats {
		byQueue[st.Queue] = append(byQueue[st.Queue], st)
	}
	return byQueue, paused, nil
}

func queryLimit(c echo.Context, def, hi int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > hi {
		return 0, validation.Errorf("limit", "must be an integer between 1 and %d", hi)
	}
	return n, nil
}

// jobView is a job as the admin API shows it.
type jobView struct {
	ID          int64                    `json:"id"`
	Kind        string                   `json:"kind"`
	Queue       string                   `json:"queue"`
	State       string                   `json:"state"`
	Priority    int                      `json:"priority"`
	Args        any                      `json:"args"`
	Attempt     int                      `json:"attempt"`
	MaxAttempts int                      `json:"max_attempts"`
	Errors      []rivertype.AttemptError `json:"errors"`
	CreatedAt   time.Time                `json:"created_at"`
	ScheduledAt time.Time                `json:"scheduled_at"`
	AttemptedAt *time.Time               `json:"attempted_at,omitempty"`
	FinalizedAt *time.Time               `json:"finalized_at,omitempty"`
	// Progress is a long job's progress record (batch-send,
	// encrypt-decrypt encrypt, cleanup-messages), kept while it runs.
	Progress json.RawMessage `json:"progress,omitempty"`
}

func viewOf(j *rivertype.JobRow) jobView {
	v := jobView{
		ID: j.ID, Kind: j.Kind, Queue: j.Queue, State: string(j.State), Priority: j.Priority,
		Args: rawJSON(j.EncodedArgs), Attempt: j.Attempt, MaxAttempts: j.MaxAttempts, Errors: j.Errors,
		CreatedAt: j.CreatedAt, ScheduledAt: j.ScheduledAt, AttemptedAt: j.AttemptedAt, FinalizedAt: j.FinalizedAt,
	}
	if v.Errors == nil {
		v.Errors = []rivertype.AttemptError{}
	}
	var meta struct {
		Progress json.RawMessage `json:"progress"`
	}
	if json.Unmarshal(j.Metadata, &meta) == nil && len(meta.Progress) > 0 && string(meta.Progress) != "null" {
		v.Progress = meta.Progress
	}
	return v
}

type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// failedParams builds the listing of a queue's discarded jobs, newest
// first.
// kindParam is the ?kind= filter of the failed-job routes: any text
// Postgres can compare, so a hostile one is a 400 and not a query error.
func kindParam(c echo.Context) (string, error) {
	kind := c.QueryParam("kind")
	if !utf8.ValidString(kind) || strings.ContainsRune(kind, 0) || len(kind) > 256 {
		return "", validation.Errorf("kind", "must be a job kind: at most 256 bytes of UTF-8 without NUL")
	}
	return kind, nil
}

func failedParams(queue, kind string) *river.JobListParams {
	p := river.NewJobListParams().States(rivertype.JobStateDiscarded).Queues(queue).
		OrderBy(river.JobListOrderByTime, river.SortOrderDesc)
	if kind != "" {
		p = p.Kinds(kind)
	}
	return p
}

func (s *Server) failedJobs(c echo.Context) error {
	ctx := c.Request().Context()
	queue := c.Param("queue")
	if err := s.requireQueue(ctx, queue); err != nil {
		return err
	}
	limit, err := queryLimit(c, 20, 100)
	if err != nil {
		return err
	}
	kind, err := kindParam(c)
	if err != nil {
		return err
	}
	params := failedParams(queue, kind).First(limit)
	if cur := c.QueryParam("cursor"); cur != "" {
		var cursor river.JobListCursor
		if err := cursor.UnmarshalText([]byte(cur)); err != nil {
			return validation.Errorf("cursor", "is not a cursor returned by this endpoint")
		}
		params = params.After(&cursor)
	}
	res, err := s.river.JobList(ctx, params)
	if err != nil {
		return err
	}
	jobs := make([]jobView, len(res.Jobs))
	for i, j := range res.Jobs {
		jobs[i] = viewOf(j)
	}
	var next *string
	if len(res.Jobs) == limit && res.LastCursor != nil {
		b, err := res.LastCursor.MarshalText()
		if err != nil {
			return err
		}
		s := string(b)
		next = &s
	}
	return c.JSON(http.StatusOK, map[string]any{"queue": queue, "jobs": jobs, "next_cursor": next})
}

func (s *Server) retryFailed(c echo.Context) error {
	ctx := c.Request().Context()
	queue := c.Param("queue")
	if err := s.requireQueue(ctx, queue); err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	kind, err := kindParam(c)
	if err != nil {
		return err
	}
	ids, failed, err := RetryFailed(ctx, s.river, queue, kind, limit)
	s.audit(c, "retry-failed", slogQueue(queue), slogInt("count", len(ids)), slogInt("failed", len(failed)), slogString("kind", kind))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"queue": queue, "retried": len(ids), "job_ids": ids, "failed": failed})
}

// RetryFailed makes up to limit of queue's discarded jobs (of kind, when
// not empty) available again, newest first, and returns their ids and,
// per job that could not be retried, why (skipped, not fatal). err is set
// only when listing failed before any job was retried.
func RetryFailed(ctx context.Context, client *river.Client[pgx.Tx], queue, kind string, limit int) (ids []int64, failed map[int64]string, err error) {
	// Retried jobs leave the discarded state, so each page starts afresh.
	ids, failed = []int64{}, map[int64]string{}
	for len(ids)+len(failed) < limit {
		p := failedParams(queue, kind).First(min(limit-len(ids)-len(failed), 100))
		if len(failed) > 0 {
			p = p.Where("NOT (id = any(@skip::bigint[]))", river.NamedArgs{"skip": keys(failed)})
		}
		res, lerr := client.JobList(ctx, p)
		if lerr != nil {
			if len(ids) == 0 {
				err = lerr
			}
			break
		}
		if len(res.Jobs) == 0 {
			break
		}
		for _, j := range res.Jobs {
			if _, err := client.JobRetry(ctx, j.ID); err != nil {
				failed[j.ID] = err.Error()
				continue
			}
			ids = append(ids, j.ID)
		}
	}
	return ids, failed, err
}

func (s *Server) pauseQueue(c echo.Context) error  { return s.setPaused(c, true) }
func (s *Server) resumeQueue(c echo.Context) error { return s.setPaused(c, false) }

func (s *Server) setPaused(c echo.Context, pause bool) error {
	ctx := c.Request().Context()
	queue := c.Param("queue")
	// Only names of queues we know reach River (and Postgres, which
	// refuses names with NUL or invalid UTF-8).
	if err := s.requireQueue(ctx, queue); err != nil {
		return err
	}
	var err error
	action := "pause"
	if pause {
		err = s.river.QueuePause(ctx, queue, nil)
	} else {
		action = "resume"
		err = s.river.QueueResume(ctx, queue, nil)
	}
	if err != nil {
		if errorsIsNotFound(err) {
			return newError(http.StatusNotFound, "queue_not_found", "no queue named "+strconv.Quote(queue)+" has been worked yet")
		}
		return err
	}
	s.audit(c, action, slogQueue(queue))
	return c.JSON(http.StatusOK, map[string]any{"queue": queue, "paused": pause})
}

func keys(m map[int64]string) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
