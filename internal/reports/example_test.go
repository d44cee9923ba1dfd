package reports_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/reports"
)

// exampleDB opens a pool on a fresh migrated database holding the rows
// the examples report on; done drops it.
func exampleDB() (pool *pgxpool.Pool, done func()) {
	ctx := context.Background()
	url, drop, err := dbtest.NewDatabase(ctx)
	if err != nil {
		log.Fatal(err)
	}
	pool, err = pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	// Four messages of one conversation between 10:00 and 11:30 on one
	// day, as the outbox and the workers leave them: sent 100–400 ms after
	// they were written, three delivered, one read, one never sent.
	const conv = "00000000-0000-4000-8000-0000000000c1"
	for _, stmt := range []string{
		`INSERT INTO conversations (id, last_seq) VALUES ('` + conv + `', 4)`,
		`INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, content, status, created_at, sent_at, delivered_at, read_at)
		 SELECT gen_random_uuid(), '` + conv + `', '00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b',
		        seq, 'x', status::message_status, created, created + sent, created + sent + delivered, created + sent + read
		 FROM (VALUES
		   (1, 'read',      timestamptz '2026-11-28 10:05Z', interval '100 ms', interval '1 s',   interval '20 s'),
		   (2, 'delivered', timestamptz '2026-11-28 10:20Z', interval '200 ms', interval '3 s',   NULL),
		   (3, 'delivered', timestamptz '2026-11-28 11:10Z', interval '400 ms', interval '500 ms', NULL),
		   (4, 'failed',    timestamptz '2026-11-28 11:30Z', NULL,              NULL,              NULL)
		 ) AS m (seq, status, created, sent, delivered, read)`,
		`INSERT INTO notifications (id, user_id, channel, status, created_at) VALUES
		   (gen_random_uuid(), gen_random_uuid(), 'push',  'sent',   '2026-11-28 10:06Z'),
		   (gen_random_uuid(), gen_random_uuid(), 'push',  'sent',   '2026-11-28 10:21Z'),
		   (gen_random_uuid(), gen_random_uuid(), 'email', 'failed', '2026-11-28 11:31Z')`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			log.Fatal(err)
		}
	}
	return pool, func() {
		pool.Close()
		if err := drop(); err != nil {
			log.Print(err)
		}
	}
}

// Run returns a report's rows in column order; the delivery report
// counts each bucket's messages by how far they got and times each step.
func ExampleRun() {
	pool, done := exampleDB()
	defer done()
	from := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	r, err := reports.Run(context.Background(), pool, "delivery", reports.Params{From: from, To: from.Add(2 * time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Title)
	for _, row := range r.Rows {
		// bucket, created, sent, delivered, read, failed, then the
		// percentiles; sent_p50_ms is column 6.
		fmt.Printf("%s: created %d, sent %d, delivered %d, read %d, failed %d, →sent p50 %.0f ms\n",
			row[0].(time.Time).UTC().Format("15:04"), row[1], row[2], row[3], row[4], row[5], row[6])
	}

	// Output:
	// Delivery funnel and latency per 1h0m0s
	// 10:00: created 2, sent 2, delivered 2, read 1, failed 0, →sent p50 150 ms
	// 11:00: created 2, sent 1, delivered 1, read 0, failed 1, →sent p50 400 ms
}

// WriteTable renders any report as the admin CLI prints it.
func ExampleWriteTable() {
	pool, done := exampleDB()
	defer done()
	from := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	r, err := reports.Run(context.Background(), pool, "notifications", reports.Params{From: from, To: from.Add(2 * time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	if err := reports.WriteTable(os.Stdout, r); err != nil {
		log.Fatal(err)
	}

	// Output:
	// Notifications by channel and status (2026-11-28T10:00:00Z to 2026-11-28T12:00:00Z)
	// CHANNEL  STATUS  NOTIFICATIONS
	// email    failed  1
	// push     sent    2
}
