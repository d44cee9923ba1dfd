package adminapi

import (
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// overviewMinutes is how far back the front page's charts reach.
const overviewMinutes = 60

// queueOverview is one queue on the front page.
type queueOverview struct {
	QueueMetrics
	Health               string  `json:"health"`
	IsPaused             bool    `json:"is_paused"`
	OldestWaitingSeconds float64 `json:"oldest_waiting_seconds"`
	// PerMinute counts the jobs that finished in each of the last 60
	// minutes, oldest first (the every-second sweeps left out).
	PerMinute struct {
		Completed []int64 `json:"completed"`
		Failed    []int64 `json:"failed"`
	} `json:"per_minute"`
}

// runningJob is a running long job on the front page.
type runningJob struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	Queue       string          `json:"queue"`
	AttemptedAt *time.Time      `json:"attempted_at,omitempty"`
	Progress    json.RawMessage `json:"progress"`
}

// overview gathers the front page's figures: every queue's counts, health,
// paused state, oldest waiting job and jobs per minute over the last
// hour, and the running jobs that keep a progress record.
func (s *Server) overview(c echo.Context) error {
	ctx := c.Request().Context()
	metrics, _, err := s.Metrics(ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(metrics))
	for name := range metrics {
		names = append(names, name)
	}
	slices.Sort(names)
	byQueue, paused, err := s.healthInputs(ctx, names)
	if err != nil {
		return err
	}
	waits, err := db.OldestWaiting(ctx, s.pool)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Minute)
	since := now.Add(-(overviewMinutes - 1) * time.Minute)
	activity, err := db.QueueActivity(ctx, s.pool, since, []string{jobs.KindDeliverPending, jobs.KindIndexPending})
	if err != nil {
		return err
	}
	running, err := db.RunningJobsWithProgress(ctx, s.pool, 50)
	if err != nil {
		return err
	}
	queues := make(map[string]queueOverview, len(names))
	for _, name := range names {
		q := queueOverview{QueueMetrics: metrics[name], Health: s.health(byQueue[name], paused[name]).Status, IsPaused: paused[name]}
		if q.Waiting > 0 { // a paused queue's jobs are paused, not waiting
			q.OldestWaitingSeconds = waits[name].Seconds()
		}
		q.PerMinute.Completed = make([]int64, overviewMinutes)
		q.PerMinute.Failed = make([]int64, overviewMinutes)
		for _, m := range activity[name] {
			if i := int(m.Minute.UTC().Sub(since) / time.Minute); i >= 0 && i < overviewMinutes {
				q.PerMinute.Completed[i] += m.Completed
				q.PerMinute.Failed[i] += m.Discarded
			}
		}
		queues[name] = q
	}
	out := make([]runningJob, len(running))
	for i, r := range running {
		out[i] = runningJob{ID: r.ID, Kind: r.Kind, Queue: r.Queue, AttemptedAt: r.AttemptedAt, Progress: r.Progress}
	}
	who, _ := c.Get(callerKey).(caller)
	return c.JSON(http.StatusOK, map[string]any{
		"role": who.Role, "generated_at": time.Now().UTC(), "since": since, "queues": queues, "running": out,
	})
}

//go:embed templates/front.html
var frontHTML string

var frontPage = template.Must(template.New("front.html").Parse(frontHTML))

// frontPageHandler serves the operator's home page: it draws itself from
// GET /overview and refreshes every few seconds; only operators get the
// pause and resume buttons.
func (s *Server) frontPageHandler(c echo.Context) error {
	who, _ := c.Get(callerKey).(caller)
	var b strings.Builder
	if err := frontPage.Execute(&b, map[string]any{"Operator": who.Role == RoleOperator}); err != nil {
		return err
	}
	return c.HTML(http.StatusOK, b.String())
}
