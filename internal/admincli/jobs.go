package admincli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/internal/adminapi"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// riverCLI is what the jobs and queue commands work with.
type riverCLI struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
	out    io.Writer
	json   bool
	audit  *slog.Logger
}

// openRiver connects to DATABASE_URL with a small pool and an insert-only
// River client; its audit log writes JSON lines to stderr.
func openRiver(ctx context.Context, getenv func(string) string, out, stderr io.Writer, asJSON bool) (*riverCLI, error) {
	r := config.NewReader(getenv)
	url, who := r.DatabaseURL(), r.Operator()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 4, MinConns: 1, ApplicationName: "msgrunner-admin-cli"})
	if err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		pool.Close()
		return nil, err
	}
	audit := slog.New(slog.NewJSONHandler(stderr, nil)).With(slog.String("who", who), slog.String("via", "cli"))
	return &riverCLI{pool: pool, client: client, out: out, json: asJSON, audit: audit}, nil
}

func (c *riverCLI) close() { c.pool.Close() }

func (c *riverCLI) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type jobLine struct {
	ID          int64                    `json:"id"`
	Kind        string                   `json:"kind"`
	Queue       string                   `json:"queue"`
	State       string                   `json:"state"`
	Attempt     int                      `json:"attempt"`
	MaxAttempts int                      `json:"max_attempts"`
	Args        json.RawMessage          `json:"args"`
	Errors      []rivertype.AttemptError `json:"errors"`
	CreatedAt   time.Time                `json:"created_at"`
	FinalizedAt *time.Time               `json:"finalized_at,omitempty"`
}

// lineOf is job j as the JSON listings print it.
func lineOf(j *rivertype.JobRow) jobLine {
	line := jobLine{ID: j.ID, Kind: j.Kind, Queue: j.Queue, State: string(j.State), Attempt: j.Attempt,
		MaxAttempts: j.MaxAttempts, Args: j.EncodedArgs, Errors: j.Errors, CreatedAt: j.CreatedAt, FinalizedAt: j.FinalizedAt}
	if line.Errors == nil {
		line.Errors = []rivertype.AttemptError{}
	}
	return line
}

func (c *riverCLI) printJobs(rows []*rivertype.JobRow) error {
	if c.json {
		out := make([]jobLine, len(rows))
		for i, j := range rows {
			out[i] = lineOf(j)
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tQUEUE\tSTATE\tATTEMPTS\tCREATED\tLAST ERROR")
	for _, j := range rows {
		last := ""
		if n := len(j.Errors); n > 0 {
			last = strings.ReplaceAll(j.Errors[n-1].Error, "\n", " ")
			if len(last) > 80 {
				last = last[:77] + "..."
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, j.Queue, j.State, j.Attempt, j.MaxAttempts,
			j.CreatedAt.UTC().Format("2006-01-02 15:04:05"), last)
	}
	return tw.Flush()
}

// sweepKinds are the periodic sweeps that run every second; jobs list
// leaves them out unless asked (--all or --kind).
var sweepKinds = []string{jobs.KindDeliverPending, jobs.KindIndexPending}

// listedKinds are the kinds jobs list shows without --all: every kind but
// the sweeps.
func listedKinds() []string {
	var out []string
	for _, k := range jobs.Kinds() {
		if !slices.Contains(sweepKinds, k.Kind) {
			out = append(out, k.Kind)
		}
	}
	return out
}

func runJobs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "jobs needs a subcommand: list, failed, show, retry, cancel or delete"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("jobs "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	queue := fs.String("queue", "", "only this queue")
	kind := fs.String("kind", "", "only this kind")
	state := fs.String("state", "", "only this River state")
	limit := fs.Int("limit", 50, "at most this many jobs (1-1000)")
	all := fs.Bool("all", false, "include the every-second sweeps")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch sub {
	case "list", "failed":
		if fs.NArg() > 0 {
			return &usageError{msg: fmt.Sprintf("jobs %s: unexpected argument %q", sub, fs.Arg(0))}
		}
		if *limit < 1 || *limit > 1000 {
			return &usageError{msg: "--limit must be between 1 and 1000"}
		}
		if sub == "failed" || *state == "failed" {
			*state = "discarded" // the dead letter, as the API calls it
		}
		if states := rivertype.JobStates(); *state != "" && !slices.Contains(states, rivertype.JobState(*state)) {
			return &usageError{msg: fmt.Sprintf("--state must be one of %v", states)}
		}
	case "show":
		if fs.NArg() != 1 {
			return &usageError{msg: "jobs show needs exactly one job id"}
		}
		if id, err := strconv.ParseInt(fs.Arg(0), 10, 64); err != nil || id < 1 {
			return &usageError{msg: fmt.Sprintf("jobs show: %q is not a job id", fs.Arg(0))}
		}
	case "retry", "cancel", "delete":
		if fs.NArg() == 0 {
			return &usageError{msg: fmt.Sprintf("jobs %s needs one or more job ids", sub)}
		}
		for _, a := range fs.Args() {
			if id, err := strconv.ParseInt(a, 10, 64); err != nil || id < 1 {
				return &usageError{msg: fmt.Sprintf("jobs %s: %q is not a job id", sub, a)}
			}
		}
	default:
		return &usageError{msg: fmt.Sprintf("unknown jobs subcommand %q", sub)}
	}

	c, err := openRiver(ctx, getenv, stdout, stderr, *asJSON)
	if err != nil {
		return err
	}
	defer c.close()

	if sub == "list" || sub == "failed" {
		p := river.NewJobListParams().OrderBy(river.JobListOrderByTime, river.SortOrderDesc).First(*limit)
		if *queue != "" {
			p = p.Queues(*queue)
		}
		if *kind != "" {
			p = p.Kinds(*kind)
		}
		if *state != "" {
			p = p.States(rivertype.JobState(*state))
		}
		if *kind == "" && !*all {
			p = p.Kinds(listedKinds()...)
		}
		res, err := c.client.JobList(ctx, p)
		if err != nil {
			return err
		}
		if len(res.Jobs) == 0 && !c.json {
			what := "jobs"
			if *state == "discarded" {
				what = "failed jobs"
			}
			_, err := fmt.Fprintf(stdout, "no %s%s\n", what, filterNote(*queue, *kind))
			return err
		}
		return c.printJobs(res.Jobs)
	}
	if sub == "show" {
		id, _ := strconv.ParseInt(fs.Arg(0), 10, 64)
		j, err := c.client.JobGet(ctx, id)
		if errors.Is(err, rivertype.ErrNotFound) {
			return fmt.Errorf("job %d: not found (River prunes finished jobs; failed ones stay in failed_jobs: admin report failures)", id)
		}
		if err != nil {
			return err
		}
		return c.showJob(j)
	}

	var failures []error
	var done []*rivertype.JobRow
	for _, a := range fs.Args() {
		id, _ := strconv.ParseInt(a, 10, 64)
		var j *rivertype.JobRow
		switch sub {
		case "retry":
			j, err = c.client.JobRetry(ctx, id)
		case "cancel":
			j, err = c.client.JobCancel(ctx, id)
		case "delete":
			j, err = c.client.JobDelete(ctx, id)
		}
		switch {
		case errors.Is(err, rivertype.ErrNotFound):
			failures = append(failures, fmt.Errorf("job %d: not found", id))
		case errors.Is(err, rivertype.ErrJobRunning):
			failures = append(failures, fmt.Errorf("job %d: running jobs cannot be deleted; cancel it first", id))
		case err != nil:
			failures = append(failures, fmt.Errorf("job %d: %w", id, err))
		default:
			c.audit.Info("audit", slog.String("action", sub), slog.Int64("job_id", id), slog.String("kind", j.Kind), slog.String("queue", j.Queue))
			done = append(done, j)
		}
	}
	if len(done) > 0 {
		if c.json {
			if err := c.printJobs(done); err != nil {
				return err
			}
		} else {
			for _, j := range done {
				fmt.Fprintf(stdout, "%s: job %d (%s) is now %s\n", sub, j.ID, j.Kind, j.State)
			}
		}
	}
	return errors.Join(failures...)
}

func runQueue(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "queue needs a subcommand: list, pause, resume or retry-failed"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("queue "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	kind := fs.String("kind", "", "retry-failed: only this kind")
	limit := fs.Int("limit", 100, "retry-failed: at most this many jobs (1-1000)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch sub {
	case "retry-failed":
		if fs.NArg() != 1 {
			return &usageError{msg: "queue retry-failed needs exactly one queue name"}
		}
		if *limit < 1 || *limit > 1000 {
			return &usageError{msg: "queue retry-failed: --limit must be between 1 and 1000"}
		}
	case "list":
		if fs.NArg() > 0 {
			return &usageError{msg: fmt.Sprintf("queue list: unexpected argument %q", fs.Arg(0))}
		}
	case "pause", "resume":
		if fs.NArg() != 1 {
			return &usageError{msg: fmt.Sprintf("queue %s needs exactly one queue name", sub)}
		}
	default:
		return &usageError{msg: fmt.Sprintf("unknown queue subcommand %q", sub)}
	}
	c, err := openRiver(ctx, getenv, stdout, stderr, *asJSON)
	if err != nil {
		return err
	}
	defer c.close()

	if sub == "list" {
		metrics, total, err := adminapi.CollectMetrics(ctx, c.pool, jobs.QueueNames())
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"queues": metrics, "totals": total})
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "QUEUE\tWAITING\tACTIVE\tDELAYED\tFAILED\tCOMPLETED\tCANCELLED\tPAUSED\t")
		keys := make([]string, 0, len(metrics))
		for k := range metrics {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		row := func(name string, m adminapi.QueueMetrics) {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, m.Waiting, m.Active, m.Delayed, m.Failed, m.Completed, m.Cancelled, m.Paused)
		}
		for _, k := range keys {
			row(k, metrics[k])
		}
		row("total", total)
		return tw.Flush()
	}

	name := fs.Arg(0)
	if sub == "retry-failed" {
		ids, failed, err := adminapi.RetryFailed(ctx, c.client, name, *kind, *limit)
		c.audit.Info("audit", slog.String("action", "retry-failed"), slog.String("queue", name), slog.Int("count", len(ids)),
			slog.Int("failed", len(failed)), slog.String("kind", *kind))
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"queue": name, "retried": len(ids), "job_ids": ids, "failed": failed})
		}
		if len(ids) == 0 && len(failed) == 0 {
			_, err := fmt.Fprintf(stdout, "no failed jobs%s to retry\n", filterNote(name, *kind))
			return err
		}
		fmt.Fprintf(stdout, "retried %d failed job(s) in queue %s\n", len(ids), name)
		for id, why := range failed {
			fmt.Fprintf(stdout, "job %d not retried: %s\n", id, why)
		}
		return nil
	}
	if sub == "pause" {
		err = c.client.QueuePause(ctx, name, nil)
	} else {
		err = c.client.QueueResume(ctx, name, nil)
	}
	if errors.Is(err, rivertype.ErrNotFound) {
		return fmt.Errorf("queue %q not found: River knows a queue once a runner has worked it", name)
	}
	if err != nil {
		return err
	}
	c.audit.Info("audit", slog.String("action", sub), slog.String("queue", name))
	fmt.Fprintf(stdout, "queue %s %sd\n", name, sub)
	return nil
}

// filterNote names the filters of an empty listing.
func filterNote(queue, kind string) string {
	var parts []string
	if queue != "" {
		parts = append(parts, "in queue "+queue)
	}
	if kind != "" {
		parts = append(parts, "of kind "+kind)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// showJob prints one job whole: what it is, its args, every attempt's
// error and its recorded output (a long job's progress record while it
// runs, once it records one).
func (c *riverCLI) showJob(j *rivertype.JobRow) error {
	var meta struct {
		Output   json.RawMessage `json:"output"`
		Progress json.RawMessage `json:"progress"`
	}
	_ = json.Unmarshal(j.Metadata, &meta)
	if c.json {
		return c.printJSON(struct {
			jobLine
			Priority    int             `json:"priority"`
			ScheduledAt time.Time       `json:"scheduled_at"`
			AttemptedAt *time.Time      `json:"attempted_at,omitempty"`
			Output      json.RawMessage `json:"output,omitempty"`
			Progress    json.RawMessage `json:"progress,omitempty"`
		}{lineOf(j), j.Priority, j.ScheduledAt, j.AttemptedAt, meta.Output, meta.Progress})
	}
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%d\n", j.ID)
	fmt.Fprintf(tw, "kind\t%s\n", j.Kind)
	fmt.Fprintf(tw, "queue\t%s\n", j.Queue)
	fmt.Fprintf(tw, "state\t%s\n", j.State)
	fmt.Fprintf(tw, "attempts\t%d of %d\n", j.Attempt, j.MaxAttempts)
	fmt.Fprintf(tw, "priority\t%d\n", j.Priority)
	fmt.Fprintf(tw, "created\t%s\n", at(&j.CreatedAt))
	fmt.Fprintf(tw, "scheduled\t%s\n", at(&j.ScheduledAt))
	fmt.Fprintf(tw, "attempted\t%s\n", at(j.AttemptedAt))
	fmt.Fprintf(tw, "finalized\t%s\n", at(j.FinalizedAt))
	fmt.Fprintf(tw, "args\t%s\n", j.EncodedArgs)
	if len(meta.Progress) > 0 {
		var p struct {
			Percentage  float64 `json:"percentage"`
			Step        string  `json:"step"`
			TotalSteps  int     `json:"totalSteps"`
			CurrentStep int     `json:"currentStep"`
		}
		if json.Unmarshal(meta.Progress, &p) == nil {
			fmt.Fprintf(tw, "progress\t%.0f%% (%s, step %d of %d)\n", p.Percentage, p.Step, p.CurrentStep, p.TotalSteps)
		}
	}
	if len(meta.Output) > 0 {
		fmt.Fprintf(tw, "output\t%s\n", meta.Output)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(j.Errors) == 0 {
		_, err := fmt.Fprintln(c.out, "errors: none")
		return err
	}
	fmt.Fprintln(c.out, "errors:")
	for _, e := range j.Errors {
		fmt.Fprintf(c.out, "  attempt %d at %s: %s\n", e.Attempt, e.At.UTC().Format("2006-01-02 15:04:05Z"),
			strings.ReplaceAll(strings.TrimSpace(e.Error), "\n", "\n    "))
	}
	return nil
}

// enqueued says which jobs a command enqueued: text, or with --json
// {"job_ids": [...]} (nothing when the command waits for the job: its
// JSON is the finished job, printed then).
func (c *riverCLI) enqueued(ids []int64, text string, wait bool) {
	if c.json {
		if !wait {
			_ = c.printJSON(map[string]any{"job_ids": ids})
		}
		return
	}
	fmt.Fprintln(c.out, text)
}
