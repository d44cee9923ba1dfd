package outbox_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

// exampleOutbox returns an outbox on pool with an insert-only River client.
func exampleOutbox(pool *pgxpool.Pool, cfg outbox.Config) *outbox.Outbox {
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.New(client, cfg)
	if err != nil {
		log.Fatal(err)
	}
	return ob
}

// exampleCount returns the result of a count(*) query.
func exampleCount(pool *pgxpool.Pool, sql string, args ...any) int {
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		log.Fatal(err)
	}
	return n
}

// The caller's own rows and the message commit together or not at all:
// SendTx works inside the caller's transaction and never ends it.
func ExampleOutbox_SendTx() {
	ctx := context.Background()
	pool, done := examplePool()
	defer done()
	ob := exampleOutbox(pool, outbox.Config{})
	if _, err := pool.Exec(ctx, `CREATE TABLE audit (note text NOT NULL)`); err != nil {
		log.Fatal(err)
	}
	alice, bob := uuid.New(), uuid.New()
	msg := outbox.Message{ConversationID: outbox.DirectConversationID(alice, bob), SenderID: alice, RecipientID: bob, Content: "hi"}

	for _, commit := range []bool{false, true} {
		err := func() error {
			tx, err := pool.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
			if _, err := tx.Exec(ctx, `INSERT INTO audit VALUES ('alice wrote to bob')`); err != nil {
				return err
			}
			if _, err := ob.SendTx(ctx, tx, msg); err != nil {
				return err
			}
			if !commit {
				return tx.Rollback(ctx)
			}
			return tx.Commit(ctx)
		}()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("commit=%v: audit rows %d, messages %d, jobs %d\n", commit,
			exampleCount(pool, `SELECT count(*) FROM audit`),
			exampleCount(pool, `SELECT count(*) FROM messages`),
			exampleCount(pool, `SELECT count(*) FROM river_job`))
	}

	// Output:
	// commit=false: audit rows 0, messages 0, jobs 0
	// commit=true: audit rows 1, messages 1, jobs 2
}

// A client that did not hear back may send again with the id it chose: the
// second send writes nothing and says the id is taken (db.ErrConflict), so
// the caller answers with the message already stored. This is how the
// gateway makes POST /v1/messages safe to retry.
func ExampleOutbox_Send() {
	ctx := context.Background()
	pool, done := examplePool()
	defer done()
	ob := exampleOutbox(pool, outbox.Config{})

	alice, bob := uuid.New(), uuid.New()
	id := uuid.New() // chosen by the client
	msg := outbox.Message{ID: id, ConversationID: outbox.DirectConversationID(alice, bob), SenderID: alice, RecipientID: bob, Content: "see you at 8"}

	first, err := ob.Send(ctx, pool, msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first: stored under the client's id:", first.ID == id, "seq", first.Seq)

	_, err = ob.Send(ctx, pool, msg)
	fmt.Println("retry: id taken:", errors.Is(err, db.ErrConflict))
	stored, err := db.GetMessage(ctx, pool, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("answer from the stored message: seq", stored.Seq, "content", *stored.Content)
	fmt.Println("messages:", exampleCount(pool, `SELECT count(*) FROM messages`),
		"jobs:", exampleCount(pool, `SELECT count(*) FROM river_job`))

	// Output:
	// first: stored under the client's id: true seq 1
	// retry: id taken: true
	// answer from the stored message: seq 1 content see you at 8
	// messages: 1 jobs: 2
}

// Bad input is a *validation.Error naming the field, returned before
// anything is written (no round trip to the database is spent on it).
func ExampleOutbox_Send_validation() {
	ctx := context.Background()
	pool, done := examplePool()
	defer done()
	ob := exampleOutbox(pool, outbox.Config{MaxContentBytes: 16})

	alice, bob := uuid.New(), uuid.New()
	good := outbox.Message{ConversationID: outbox.DirectConversationID(alice, bob), SenderID: alice, RecipientID: bob, Content: "hi"}
	for _, edit := range []func(*outbox.Message){
		func(m *outbox.Message) { m.ConversationID = uuid.Nil },
		func(m *outbox.Message) { m.RecipientID = m.SenderID },
		func(m *outbox.Message) { m.Content = "   " },
		func(m *outbox.Message) { m.Content = strings.Repeat("x", 17) },
		func(m *outbox.Message) { m.Content = "bad \xff byte" },
		func(m *outbox.Message) { m.Priority = "urgent" },
	} {
		m := good
		edit(&m)
		_, err := ob.Send(ctx, pool, m)
		var ve *validation.Error
		if errors.As(err, &ve) {
			fmt.Printf("%s: %s\n", ve.Field, ve.Problem)
		}
	}
	fmt.Println("messages written:", exampleCount(pool, `SELECT count(*) FROM messages`))

	// Output:
	// conversation_id: is required
	// recipient_id: must differ from sender_id
	// content: must not be empty
	// content: is 17 bytes, over the limit of 16
	// content: must be valid UTF-8
	// priority: unknown priority "urgent" (want critical, high, normal or low)
	// messages written: 0
}

// With a Sealer the outbox seals a message that asks for it: only
// ciphertext reaches the database and the job args, and the conversation's
// data key (wrapped by the keyring's active key) opens it again.
func ExampleOutbox_Send_encrypted() {
	ctx := context.Background()
	pool, done := examplePool()
	defer done()
	key := strings.Repeat("k", keyring.KeySize)
	ring, err := keyring.Parse("k1:"+base64.StdEncoding.EncodeToString([]byte(key)), "k1")
	if err != nil {
		log.Fatal(err)
	}
	sealer := keyring.NewSealer(ring)
	ob := exampleOutbox(pool, outbox.Config{Sealer: sealer})

	alice, bob := uuid.New(), uuid.New()
	res, err := ob.Send(ctx, pool, outbox.Message{
		ConversationID: outbox.DirectConversationID(alice, bob), SenderID: alice, RecipientID: bob,
		Content: "the door code is 4521", Encrypt: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	stored, err := db.GetMessage(ctx, pool, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("encrypted:", res.Encrypted)
	fmt.Println("plaintext stored:", stored.Content != nil)
	fmt.Println("key:", *stored.KeyID)
	fmt.Println("plaintext in job args:", exampleCount(pool, `SELECT count(*) FROM river_job WHERE args::text LIKE '%4521%'`) > 0)
	plain, err := sealer.Open(ctx, pool, stored)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("opened:", plain)

	// Output:
	// encrypted: true
	// plaintext stored: false
	// key: conversation-key-v1
	// plaintext in job args: false
	// opened: the door code is 4521
}

// Schedule holds a message until it is due: a scheduled_messages row and a
// release job River makes available at send time. Until then it has no seq
// and the sender can list or cancel it.
func ExampleOutbox_Schedule() {
	ctx := context.Background()
	pool, done := examplePool()
	defer done()
	ob := exampleOutbox(pool, outbox.Config{})

	alice, bob := uuid.New(), uuid.New()
	sendAt := time.Now().Add(time.Hour).Truncate(time.Second)
	s, err := ob.Schedule(ctx, pool, outbox.Message{
		ConversationID: outbox.DirectConversationID(alice, bob), SenderID: alice, RecipientID: bob,
		Content: "happy birthday!", Priority: "high",
	}, sendAt)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", s.Status, "priority:", s.Priority, "send at as asked:", s.SendAt.Equal(sendAt))

	var kind, state string
	var at time.Time
	if err := pool.QueryRow(ctx, `SELECT kind, state::text, scheduled_at FROM river_job`).Scan(&kind, &state, &at); err != nil {
		log.Fatal(err)
	}
	fmt.Println("job:", kind, state, "due at send time:", at.Equal(sendAt))
	fmt.Println("messages:", exampleCount(pool, `SELECT count(*) FROM messages`))

	list, err := ob.ListScheduled(ctx, pool, alice, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice's scheduled:", len(list), list[0].Content)
	if err := ob.CancelScheduled(ctx, pool, alice, s.ID); err != nil {
		log.Fatal(err)
	}
	list, err = ob.ListScheduled(ctx, pool, alice, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after cancel:", len(list))

	// In the past is refused, naming the field.
	_, err = ob.Schedule(ctx, pool, outbox.Message{
		ConversationID: outbox.DirectConversationID(alice, bob), SenderID: alice, RecipientID: bob, Content: "too late",
	}, time.Now().Add(-time.Minute))
	var ve *validation.Error
	fmt.Println(errors.As(err, &ve), ve.Field)

	// Output:
	// status: pending priority: high send at as asked: true
	// job: release-scheduled-message scheduled due at send time: true
	// messages: 0
	// alice's scheduled: 1 happy birthday!
	// after cancel: 0
	// true send_at
}

// SendManyTx writes one message to each of many conversations with two
// statements and one COPY of their jobs: the path of broadcasts. A bad
// message is named by its index and nothing is written.
func ExampleOutbox_SendManyTx() {
	ctx := context.Background()
	pool, done := examplePool()
	defer done()
	ob := exampleOutbox(pool, outbox.Config{})

	sender := uuid.New()
	var ms []outbox.Message
	for range 3 {
		to := uuid.New()
		ms = append(ms, outbox.Message{ConversationID: outbox.DirectConversationID(sender, to), SenderID: sender, RecipientID: to, Content: "service resumes at 9"})
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		res, err := ob.SendManyTx(ctx, tx, ms)
		for _, r := range res {
			fmt.Println("seq", r.Seq, r.Status)
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("jobs:", exampleCount(pool, `SELECT count(*) FROM river_job`))

	ms[1].Content = ""
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := ob.SendManyTx(ctx, tx, ms)
		return err
	})
	fmt.Println(err)

	// Output:
	// seq 1 pending
	// seq 1 pending
	// seq 1 pending
	// jobs: 6
	// messages[1].content: must not be empty
}

// Two users share one direct conversation, whichever of them writes first:
// its id is derived from theirs.
func ExampleDirectConversationID() {
	alice := uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	bob := uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")
	fmt.Println(outbox.DirectConversationID(alice, bob) == outbox.DirectConversationID(bob, alice))
	fmt.Println(outbox.DirectConversationID(alice, bob))

	// Output:
	// true
	// 8f52966b-a7d6-5597-b3de-38c411ba02eb
}
