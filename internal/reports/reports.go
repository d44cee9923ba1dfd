// Package reports runs the operator reports (delivery, jobs, failures,
// notifications, broadcasts) and renders them as tables, CSV or JSON.
//
// Job figures come from the jobs River still holds (completed and
// cancelled jobs are pruned after a day, discarded ones after a week, by
// default) and, for older ranges, from what the job-history job keeps: the
// hourly job_stats rollups (the jobs report reads them when River has
// pruned jobs of the range) and the failed_jobs archive (the failures
// report adds archived errors of pruned jobs).
package reports

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/validation"
)

// Names lists the reports in the order operators read them.
func Names() []string {
	return []string{"delivery", "jobs", "failures", "notifications", "broadcasts"}
}

// Params select what a report covers.
type Params struct {
	From, To time.Time
	// Interval buckets the delivery report; default 1h.
	Interval time.Duration
	// Limit caps the rows of the failures and broadcasts reports; default
	// 50.
	Limit int
}

// DefaultRange is the range of a report when none is given: the last 24
// hours, ending at the next whole minute after now so that it includes now.
func DefaultRange(now time.Time) (from, to time.Time) {
	to = now.UTC().Truncate(time.Minute).Add(time.Minute)
	return to.Add(-24 * time.Hour), to
}

// MaxRange bounds To − From.
const MaxRange = 366 * 24 * time.Hour

// Validate checks p and fills in defaults; errors name the parameter.
func (p *Params) Validate() error {
	if p.Interval == 0 {
		p.Interval = time.Hour
	}
	if p.Limit == 0 {
		p.Limit = 50
	}
	switch {
	case p.From.IsZero():
		return validation.Errorf("from", "is required (RFC 3339, e.g. 2026-11-28T00:00:00Z)")
	case p.To.IsZero():
		return validation.Errorf("to", "is required (RFC 3339)")
	case !p.To.After(p.From):
		return validation.Errorf("to", "must be after from")
	case p.To.Sub(p.From) > MaxRange:
		return validation.Errorf("to", "the range must be at most %s", MaxRange)
	case p.Interval < time.Minute:
		return validation.Errorf("interval", "must be at least 1m")
	case p.To.Sub(p.From)/p.Interval > 10000:
		return validation.Errorf("interval", "makes more than 10000 buckets; choose a longer one")
	case p.Limit < 1 || p.Limit > 1000:
		return validation.Errorf("limit", "must be between 1 and 1000")
	}
	return nil
}

// Column describes one column of a report.
type Column struct {
	Key   string `json:"key"`
	Title string `json:"title"`
}

// Report is a report's result: rows of values in column order. Values are
// int64, float64 (milliseconds), string, time.Time, or nil (nothing to
// measure).
type Report struct {
	Name    string
	Title   string
	Note    string
	Params  Params
	Columns []Column
	Rows    [][]any
}

func cols(pairs ...string) []Column {
	out := make([]Column, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Column{Key: pairs[i], Title: pairs[i+1]})
	}
	return out
}

func f(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Run runs the named report. An unknown name is a *validation.Error on
// "name".
func Run(ctx context.Context, q db.Querier, name string, p Params) (*Report, error) {
	if !slices.Contains(Names(), name) {
		return nil, validation.Errorf("name", "unknown report %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	r := &Report{Name: name, Params: p}
	switch name {
	case "delivery":
		rows, err := db.DeliveryReport(ctx, q, p.From, p.To, p.Interval)
		if err != nil {
			return nil, err
		}
		r.Title = "Delivery funnel and latency per " + p.Interval.String()
		r.Columns = cols("bucket", "Interval start", "created", "Created", "sent", "Sent", "delivered", "Delivered",
			"read", "Read", "failed", "Failed", "sent_p50_ms", "→sent p50 ms", "sent_p95_ms", "→sent p95 ms",
			"sent_p99_ms", "→sent p99 ms", "delivered_p50_ms", "sent→delivered p50 ms",
			"delivered_p95_ms", "sent→delivered p95 ms", "delivered_p99_ms", "sent→delivered p99 ms",
			"group_messages", "Group messages", "group_delivered_all", "Group: delivered to all", "group_read_all", "Group: read by all")
		for _, x := range rows {
			r.Rows = append(r.Rows, []any{x.Bucket, x.Created, x.Sent, x.Delivered, x.Read, x.Failed,
				f(x.SentP50), f(x.SentP95), f(x.SentP99), f(x.DeliveredP50), f(x.DeliveredP95), f(x.DeliveredP99),
				x.GroupMessages, x.GroupDeliveredAll, x.GroupReadAll})
		}
	case "jobs":
		rows, source, err := db.JobsReport(ctx, q, p.From, p.To)
		if err != nil {
			return nil, err
		}
		r.Title = "Jobs per kind"
		r.Note = "Exact, from the jobs River still holds."
		if source == db.JobsFromStats {
			r.Note = "From the hourly job_stats rollups (River has pruned part of this range): whole hours; percentiles are completed-weighted means of hourly percentiles."
		}
		r.Columns = cols("kind", "Kind", "completed", "Completed", "discarded", "Discarded", "cancelled", "Cancelled",
			"per_hour", "Completed per hour", "failure_rate", "Failure rate", "run_p50_ms", "Run p50 ms",
			"run_p95_ms", "Run p95 ms", "run_p99_ms", "Run p99 ms", "wait_p50_ms", "Wait p50 ms",
			"wait_p95_ms", "Wait p95 ms", "wait_p99_ms", "Wait p99 ms")
		hours := p.To.Sub(p.From).Hours()
		for _, x := range rows {
			var rate any
			if n := x.Completed + x.Discarded; n > 0 {
				rate = float64(x.Discarded) / float64(n)
			}
			r.Rows = append(r.Rows, []any{x.Kind, x.Completed, x.Discarded, x.Cancelled, float64(x.Completed) / hours, rate,
				f(x.RunP50), f(x.RunP95), f(x.RunP99), f(x.WaitP50), f(x.WaitP95), f(x.WaitP99)})
		}
	case "failures":
		rows, err := db.FailuresReport(ctx, q, p.From, p.To, p.Limit)
		if err != nil {
			return nil, err
		}
		r.Title = "Most frequent job errors"
		r.Note = "From the jobs River still holds and the failed-jobs archive."
		r.Columns = cols("kind", "Kind", "error", "Error (first line)", "occurrences", "Occurrences", "last_seen", "Last seen")
		for _, x := range rows {
			r.Rows = append(r.Rows, []any{x.Kind, x.Error, x.Occurrences, x.LastSeen})
		}
	case "notifications":
		rows, err := db.NotificationsReport(ctx, q, p.From, p.To)
		if err != nil {
			return nil, err
		}
		r.Title = "Notifications by channel and status"
		r.Columns = cols("channel", "Channel", "status", "Status", "notifications", "Notifications")
		for _, x := range rows {
			r.Rows = append(r.Rows, []any{x.Channel, x.Status, x.Count})
		}
	case "broadcasts":
		rows, err := db.BroadcastsReport(ctx, q, p.From, p.To, p.Limit)
		if err != nil {
			return nil, err
		}
		r.Title = "Broadcasts"
		r.Columns = cols("id", "Broadcast", "status", "Status", "total", "Recipients", "processed", "Processed",
			"failed", "Failed", "created_at", "Created", "duration_seconds", "Duration s")
		for _, x := range rows {
			var dur any
			if x.StartedAt != nil && x.FinishedAt != nil {
				dur = x.FinishedAt.Sub(*x.StartedAt).Seconds()
			}
			r.Rows = append(r.Rows, []any{x.ID.String(), x.Status, x.Total, x.Processed, x.Failed, x.CreatedAt, dur})
		}
	}
	return r, nil
}

// cell formats one value for tables and CSV.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case float64:
		return strconv.FormatFloat(x, 'f', 2, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		return fmt.Sprint(x)
	}
}

// WriteTable writes r as an aligned text table with its title.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "%s (%s to %s)\n", r.Title, r.Params.From.UTC().Format(time.RFC3339), r.Params.To.UTC().Format(time.RFC3339))
	if r.Note != "" {
		fmt.Fprintln(w, r.Note)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	titles := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		titles[i] = strings.ToUpper(c.Title)
	}
	fmt.Fprintln(tw, strings.Join(titles, "\t"))
	for _, row := range r.Rows {
		vals := make([]string, len(row))
		for i, v := range row {
			vals[i] = cell(v)
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	if len(r.Rows) == 0 {
		fmt.Fprintln(tw, "(no data in this range)")
	}
	return tw.Flush()
}

// WriteCSV writes r as CSV with a header of column keys; empty cells are
// values with nothing to measure.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	header := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		header[i] = c.Key
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, row := range r.Rows {
		vals := make([]string, len(row))
		for i, v := range row {
			if v != nil {
				vals[i] = cell(v)
			}
		}
		if err := cw.Write(vals); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// MarshalJSON renders {name, title, note, from, to, interval_seconds,
// columns, rows: [{key: value}]}.
func (r *Report) MarshalJSON() ([]byte, error) {
	rows := make([]map[string]any, len(r.Rows))
	for i, row := range r.Rows {
		m := make(map[string]any, len(row))
		for j, v := range row {
			m[r.Columns[j].Key] = v
		}
		rows[i] = m
	}
	return json.Marshal(map[string]any{
		"name": r.Name, "title": r.Title, "note": r.Note, "from": r.Params.From, "to": r.Params.To,
		"interval_seconds": r.Params.Interval.Seconds(), "columns": r.Columns, "rows": rows,
	})
}
