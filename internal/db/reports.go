package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// ms turns a percentile the queries report as -1 when there was nothing
// to measure into nil.
func ms(v float64) *float64 {
	if v < 0 {
		return nil
	}
	return &v
}

// DeliveryRow is one interval of the delivery report.
type DeliveryRow struct {
	Bucket                                   time.Time
	Created, Sent, Delivered, Read, Failed   int64
	SentP50, SentP95, SentP99                *float64 // ms, created -> sent
	DeliveredP50, DeliveredP95, DeliveredP99 *float64 // ms, sent -> delivered
	// Group messages (counted in Created and Sent too), and how many of
	// them every member who could see them has delivered, and read.
	GroupMessages, GroupDeliveredAll, GroupReadAll int64
}

// BucketOrigin is where the delivery report's buckets start counting:
// every bucket begins a whole number of intervals after it.
var BucketOrigin = time.Unix(0, 0).UTC()

// DeliveryReport counts messages created per interval in [from, to), with
// their latency percentiles.
func DeliveryReport(ctx context.Context, q Querier, from, to time.Time, interval time.Duration) ([]DeliveryRow, error) {
	rows, err := dbsqlc.New(q).DeliveryReport(ctx, dbsqlc.DeliveryReportParams{
		Bucket: pgtype.Interval{Microseconds: interval.Microseconds(), Valid: true}, Origin: BucketOrigin, FromTime: from, ToTime: to,
	})
	if err != nil {
		return nil, translate("delivery report", err)
	}
	out := make([]DeliveryRow, len(rows))
	for i, r := range rows {
		out[i] = DeliveryRow{
			Bucket: r.Bucket, Created: r.Created, Sent: r.Sent, Delivered: r.Delivered, Read: r.Read, Failed: r.Failed,
			SentP50: ms(r.SentP50Ms), SentP95: ms(r.SentP95Ms), SentP99: ms(r.SentP99Ms),
			DeliveredP50: ms(r.DeliveredP50Ms), DeliveredP95: ms(r.DeliveredP95Ms), DeliveredP99: ms(r.DeliveredP99Ms),
			GroupMessages: r.GroupMessages, GroupDeliveredAll: r.GroupDeliveredAll, GroupReadAll: r.GroupReadAll,
		}
	}
	return out, nil
}

// JobsRow is one kind of the jobs report.
type JobsRow struct {
	Kind                            string
	Completed, Discarded, Cancelled int64
	RunP50, RunP95, RunP99          *float64 // ms
	WaitP50, WaitP95, WaitP99       *float64 // ms
}

// Sources of the jobs report.
const (
	JobsFromRiver = "river_job" // exact, from the jobs River still holds
	JobsFromStats = "job_stats" // from the hourly rollups (percentiles approximate)
)

// JobsReport summarises, per kind, the jobs that finished in [from, to).
// When River still holds every job finished since from, the figures are
// exact and come from river_job; when the rollups hold hours of the range
// older than anything River still holds (River pruned them), they come
// from the hourly job_stats rollups (whole hours; percentiles are
// completed-weighted means of the hourly ones). source says which.
func JobsReport(ctx context.Context, q Querier, from, to time.Time) (rows []JobsRow, source string, err error) {
	oldest, err := dbsqlc.New(q).OldestLiveFinishedJob(ctx)
	if err != nil {
		return nil, "", translate("jobs report", err)
	}
	pruned, err := dbsqlc.New(q).StatsExistBefore(ctx, dbsqlc.StatsExistBeforeParams{
		FromTime: from.UTC().Truncate(time.Hour), Before: oldest.UTC().Truncate(time.Hour),
	})
	if err != nil {
		return nil, "", translate("jobs report", err)
	}
	if pruned {
		stats, err := dbsqlc.New(q).JobsReportFromStats(ctx, dbsqlc.JobsReportFromStatsParams{
			FromTime: from.UTC().Truncate(time.Hour), ToTime: to,
		})
		if err != nil {
			return nil, "", translate("jobs report", err)
		}
		rows := make([]dbsqlc.JobsReportRow, len(stats))
		for i, r := range stats {
			rows[i] = dbsqlc.JobsReportRow(r) // the two queries return the same columns
		}
		return jobsRows(rows), JobsFromStats, nil
	}
	live, err := dbsqlc.New(q).JobsReport(ctx, dbsqlc.JobsReportParams{FromTime: from, ToTime: to})
	if err != nil {
		return nil, "", translate("jobs report", err)
	}
	return jobsRows(live), JobsFromRiver, nil
}

func jobsRows(rows []dbsqlc.JobsReportRow) []JobsRow {
	out := make([]JobsRow, len(rows))
	for i, r := range rows {
		out[i] = JobsRow{
			Kind: r.Kind, Completed: r.Completed, Discarded: r.Discarded, Cancelled: r.Cancelled,
			RunP50: ms(r.RunP50Ms), RunP95: ms(r.RunP95Ms), RunP99: ms(r.RunP99Ms),
			WaitP50: ms(r.WaitP50Ms), WaitP95: ms(r.WaitP95Ms), WaitP99: ms(r.WaitP99Ms),
		}
	}
	return out
}

// FailureRow is one error message of the failures report.
type FailureRow struct {
	Kind        string
	Error       string
	Occurrences int64
	LastSeen    time.Time
}

// FailuresReport returns the most frequent first lines of errors per kind
// among attempts made in [from, to), most frequent first, from the jobs
// River holds and the failed-jobs archive.
func FailuresReport(ctx context.Context, q Querier, from, to time.Time, limit int) ([]FailureRow, error) {
	rows, err := dbsqlc.New(q).FailuresReport(ctx, dbsqlc.FailuresReportParams{FromTime: from, ToTime: to, MaxRows: int32(limit)})
	if err != nil {
		return nil, translate("failures report", err)
	}
	out := make([]FailureRow, len(rows))
	for i, r := range rows {
		out[i] = FailureRow{Kind: r.Kind, Error: r.Error, Occurrences: r.Occurrences, LastSeen: r.LastSeen}
	}
	return out, nil
}

// NotificationRow counts notifications of one channel in one status.
type NotificationRow struct {
	Channel, Status string
	Count           int64
}

// NotificationsReport counts notifications created in [from, to) by
// channel and status.
func NotificationsReport(ctx context.Context, q Querier, from, to time.Time) ([]NotificationRow, error) {
	rows, err := dbsqlc.New(q).NotificationsReport(ctx, dbsqlc.NotificationsReportParams{FromTime: from, ToTime: to})
	if err != nil {
		return nil, translate("notifications report", err)
	}
	out := make([]NotificationRow, len(rows))
	for i, r := range rows {
		out[i] = NotificationRow{Channel: r.Channel, Status: r.Status, Count: r.Notifications}
	}
	return out, nil
}

// BroadcastRow is one broadcast of the broadcasts report.
type BroadcastRow struct {
	ID                       uuid.UUID
	Status                   string
	Total, Processed, Failed int64
	CreatedAt                time.Time
	StartedAt, FinishedAt    *time.Time
}

// BroadcastsReport lists broadcasts created in [from, to), newest first.
func BroadcastsReport(ctx context.Context, q Querier, from, to time.Time, limit int) ([]BroadcastRow, error) {
	rows, err := dbsqlc.New(q).BroadcastsReport(ctx, dbsqlc.BroadcastsReportParams{FromTime: from, ToTime: to, MaxRows: int32(limit)})
	if err != nil {
		return nil, translate("broadcasts report", err)
	}
	out := make([]BroadcastRow, len(rows))
	for i, r := range rows {
		out[i] = BroadcastRow{
			ID: r.ID, Status: r.Status, Total: int64(r.Total), Processed: int64(r.Processed), Failed: int64(r.Failed),
			CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		}
	}
	return out, nil
}
