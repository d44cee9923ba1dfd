package adminapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/reports"
)

// The chart's slots must be the report's buckets, which count from
// db.BucketOrigin: with a 7m interval (which does not divide a day) two
// consecutive buckets must land in two consecutive slots.
func TestDeliveryChartSlotsAreTheReportBuckets(t *testing.T) {
	interval := 7 * time.Minute
	first := db.BucketOrigin.Add(time.Duration(2_000_000) * interval)
	p := reports.Params{From: first.Add(380 * time.Second), Interval: interval}
	p.To = p.From.Add(time.Hour)
	row := func(bucket time.Time) []any {
		return []any{bucket, int64(1), int64(1), int64(1), int64(1), int64(0)}
	}
	ch := deliveryChart(&reports.Report{Params: p, Rows: [][]any{row(first), row(first.Add(interval))}})
	require.NotNil(t, ch)
	slot := float64(ch.Width) / 10 // 60m from a bucket start 380s earlier: ceil(3980s / 420s) slots
	require.Len(t, ch.Bars, 6)
	require.InDelta(t, 0, ch.Bars[0].X, 0.001, "the bucket holding From is slot 0")
	require.InDelta(t, slot, ch.Bars[3].X, 0.001, "the next bucket is slot 1")
}
