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

func (c *riverCLI) printJobs(rows []*rivertype.JobRow) error {
	if c.json {
		out := make([]jobLine, len(rows))
		for i, j := range rows {
			out[i] = jobLine{ID: j.ID, Kind: j.Kind, Queue: j.Queue, State: string(j.State), Attempt: j.Attempt,
				MaxAttempts: j.MaxAttempts, Args: j.EncodedArgs, Errors: j.Errors, CreatedAt: j.CreatedAt, FinalizedAt: j.FinalizedAt}
			if out[i].Errors == nil {
				out[i].Errors = []rivertype.AttemptError{}
			}
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

func runJobs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{"jobs needs a subcommand: list, failed, retry, cancel or delete"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("jobs "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	queue := fs.String("queue", "", "only this queue")
	kind := fs.String("kind", "", "only this kind")
	state := fs.String("state", "", "only this River state")
	limit := fs.Int("limit", 50, "at most this many jobs (1-1000)")
	if err := fs.Parse(args[1:]); err != nil {
		return &usageError{fmt.Sprintf("jobs %s: %v", sub, err)}
	}
	switch sub {
	case "list", "failed":
		if fs.NArg() > 0 {
			return &usageError{fmt.Sprintf("jobs %s: unexpected argument %q", sub, fs.Arg(0))}
		}
		if *limit < 1 || *limit > 1000 {
			return &usageError{"--limit must be between 1 and 1000"}
		}
		if sub == "failed" {
			*state = "discarded"
		}
		if states := rivertype.JobStates(); *state != "" && !slices.Contains(states, rivertype.JobState(*state)) {
			return &usageError{fmt.Sprintf("--state must be one of %v", states)}
		}
	case "retry", "cancel", "delete":
		if fs.NArg() == 0 {
			return &usageError{fmt.Sprintf("jobs %s needs one or more job ids", sub)}
		}
		for _, a := range fs.Args() {
			if id, err := strconv.ParseInt(a, 10, 64); err != nil || id < 1 {
				return &usageError{fmt.Sprintf("jobs %s: %q is not a job id", sub, a)}
			}
		}
	default:
		return &usageError{fmt.Sprintf("unknown jobs subcommand %q", sub)}
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
		res, err := c.client.JobList(ctx, p)
		if err != nil {
			return err
		}
		return c.printJobs(res.Jobs)
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
		return &usageError{"queue needs a subcommand: list, pause or resume"}
	}
	sub := args[0]
	fs := flag.NewFlagSet("queue "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args[1:]); err != nil {
		return &usageError{fmt.Sprintf("queue %s: %v", sub, err)}
	}
	switch sub {
	case "list":
		if fs.NArg() > 0 {
			return &usageError{fmt.Sprintf("queue list: unexpected argument %q", fs.Arg(0))}
		}
	case "pause", "resume":
		if fs.NArg() != 1 {
			return &usageError{fmt.Sprintf("queue %s needs exactly one queue name", sub)}
		}
	default:
		return &usageError{fmt.Sprintf("unknown queue subcommand %q", sub)}
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
