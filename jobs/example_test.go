package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/validation"
)

// Each kind runs in its queue with its attempts and default priority.
func ExampleKinds() {
	for _, k := range jobs.Kinds() {
		fmt.Printf("%-27s %-21s attempts %d, %s\n", k.Kind, k.Queue, k.MaxAttempts, k.Priority)
	}

	// Output:
	// send-message                message-delivery      attempts 5, high
	// delivery-confirmation       message-delivery      attempts 5, high
	// send-notification           message-notification  attempts 3, normal
	// index-message               message-indexing      attempts 3, low
	// encrypt-decrypt             message-encryption    attempts 3, normal
	// batch-send                  batch-message-sending attempts 3, normal
	// cleanup-messages            message-cleanup       attempts 2, low
	// release-scheduled-message   message-delivery      attempts 5, high
	// job-history                 message-cleanup       attempts 2, low
	// deliver-pending             message-delivery      attempts 1, high
	// index-pending               message-indexing      attempts 1, low
}

// The queue table: workers per runner, how long a job may run, and the
// wait after each failed attempt.
func ExampleDefaultQueues() {
	for _, q := range jobs.DefaultQueues() {
		fmt.Printf("%-21s workers %2d, timeout %-5s retries after %s, %s, %s\n",
			q.Name, q.Workers, q.Timeout, q.RetryDelay(1), q.RetryDelay(2), q.RetryDelay(3))
	}

	// Output:
	// message-delivery      workers 50, timeout 30s   retries after 2s, 4s, 8s
	// message-notification  workers 15, timeout 20s   retries after 1s, 2s, 4s
	// message-indexing      workers  3, timeout 1m0s  retries after 3s, 6s, 12s
	// message-encryption    workers  5, timeout 45s   retries after 2s, 4s, 8s
	// batch-message-sending workers  2, timeout 5m0s  retries after 5s, 10s, 20s
	// message-cleanup       workers  1, timeout 10m0s retries after 10s, 10s, 10s
}

// Priorities are names on the API and River's 1–4 underneath, where lower
// runs first.
func ExampleParsePriority() {
	for _, name := range []string{"critical", "High", "normal", "low", "asap"} {
		p, err := jobs.ParsePriority(name)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s → River priority %d (%s)\n", name, int(p), p)
	}

	// Output:
	// critical → River priority 1 (critical)
	// High → River priority 2 (high)
	// normal → River priority 3 (normal)
	// low → River priority 4 (low)
	// unknown priority "asap" (want critical, high, normal or low)
}

// Validate names the first field that is wrong, in the args' JSON names.
func ExampleSendNotificationArgs_Validate() {
	id := uuid.New()
	for _, args := range []jobs.SendNotificationArgs{
		{MessageID: id, RecipientID: id, Channels: []string{jobs.ChannelPush, jobs.ChannelEmail}},
		{RecipientID: id},
		{MessageID: id, RecipientID: id, Channels: []string{"push", "fax"}},
		{MessageID: id, RecipientID: id, Channels: []string{"sms", "sms"}},
	} {
		err := args.Validate()
		var ve *validation.Error
		switch {
		case err == nil:
			fmt.Println("valid")
		case errors.As(err, &ve):
			fmt.Printf("%s: %s\n", ve.Field, ve.Problem)
		}
	}

	// Output:
	// valid
	// message_id: is required (a non-nil UUID)
	// channels[1]: must be one of [push email sms in_app], got "fax"
	// channels[1]: repeats "sms"
}

// River checks args on every insert through the kinds' hooks: invalid args
// never reach the queue, whoever inserts them, and one bad args in a batch
// refuses the batch.
func Example_validatedOnInsert() {
	ctx := context.Background()
	url, drop, err := dbtest.NewDatabase(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := drop(); err != nil {
			log.Print(err)
		}
	}()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		log.Fatal(err)
	}

	_, err = client.InsertMany(ctx, []river.InsertManyParams{
		{Args: jobs.SendMessageArgs{MessageID: uuid.New()}},
		{Args: jobs.CleanupMessagesArgs{Type: "old_messages"}},
	})
	var ve *validation.Error
	fmt.Println("refused:", errors.As(err, &ve), ve.Field)

	res, err := client.Insert(ctx, jobs.CleanupMessagesArgs{Type: "old_messages", RetentionDays: 90}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("inserted:", res.Job.Kind, "in", res.Job.Queue, "priority", res.Job.Priority, "attempts", res.Job.MaxAttempts)
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("jobs:", n)

	// Output:
	// refused: true retention_days
	// inserted: cleanup-messages in message-cleanup priority 4 attempts 2
	// jobs: 1
}
