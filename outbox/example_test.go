package outbox_test

import (
	"context"
	"fmt"
	"log"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/outbox"
)

// examplePool opens a pool on a fresh migrated database; done drops it.
func examplePool() (pool *pgxpool.Pool, done func()) {
	ctx := context.Background()
	url, drop, err := dbtest.NewDatabase(ctx)
	if err != nil {
		log.Fatal(err)
	}
	pool, err = pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	return pool, func() {
		pool.Close()
		if err := drop(); err != nil {
			log.Print(err)
		}
	}
}

// Example shows a message service storing a message and its jobs in its own
// transaction.
func Example() {
	ctx := context.Background()
	pool, done := examplePool()
	defer done()

	// An insert-only River client is all the outbox needs.
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.New(client, outbox.Config{})
	if err != nil {
		log.Fatal(err)
	}

	alice, bob, conv := uuid.New(), uuid.New(), uuid.New()
	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	res, err := ob.SendTx(ctx, tx, outbox.Message{
		ConversationID: conv, SenderID: alice, RecipientID: bob, Content: "lunch?",
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}

	fmt.Println("seq:", res.Seq, "status:", res.Status)
	for _, j := range res.Jobs {
		fmt.Println("job:", j.Kind)
	}

	// Output:
	// seq: 1 status: pending
	// job: send-message
	// job: send-notification
}
