package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/outbox"
)

// exampleEnv is a fresh database and Redis prefix, an outbox and a
// fanout on them; done drops them.
type exampleEnv struct {
	pool   *pgxpool.Pool
	rdb    *redis.Client
	keys   fanout.Keys
	fanout *fanout.Fanout
	outbox *outbox.Outbox
	done   func()
}

func newExampleEnv() exampleEnv {
	ctx := context.Background()
	url, drop, err := dbtest.NewDatabase(ctx)
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	rdb, prefix, closeRedis, err := dbtest.NewRedis(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.New(client, outbox.Config{})
	if err != nil {
		log.Fatal(err)
	}
	keys := fanout.Keys{Prefix: prefix}
	return exampleEnv{pool: pool, rdb: rdb, keys: keys, fanout: fanout.New(rdb, fanout.Config{Keys: keys}), outbox: ob,
		done: func() {
			closeRedis()
			pool.Close()
			if err := drop(); err != nil {
				log.Print(err)
			}
		}}
}

// send stores a message the way the gateway does (no send-message job:
// the writer publishes it) and returns it as stored.
func (e exampleEnv) send(content string) db.Message {
	ctx := context.Background()
	res, err := e.outbox.Send(ctx, e.pool, outbox.Message{ConversationID: uuid.New(), SenderID: uuid.New(),
		RecipientID: uuid.New(), Content: content, CallerPublishes: true})
	if err != nil {
		log.Fatal(err)
	}
	m, err := db.GetMessage(ctx, e.pool, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	return m
}

func (e exampleEnv) status(id uuid.UUID) db.MessageStatus {
	m, err := db.GetMessage(context.Background(), e.pool, id)
	if err != nil {
		log.Fatal(err)
	}
	return m.Status
}

// The gateway's fast path: right after the message's transaction
// commits, publish it on the recipient's channel; the sent mark follows
// in a batch, and Close writes the marks still waiting.
func ExampleDeliverer_AfterCommit() {
	ctx := context.Background()
	env := newExampleEnv()
	defer env.done()
	d := delivery.New(env.pool, env.fanout, delivery.Config{DeferMarks: true})

	m := env.send("lunch?")
	// The recipient's gateway holds a subscription to their channel.
	hub := fanout.NewHub(env.rdb, fanout.HubConfig{Keys: env.keys})
	defer hub.Close()
	arrived := make(chan struct{}, 1)
	sub, err := hub.Subscribe(ctx, m.RecipientID, 16, func() {
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	if err := d.AfterCommit(ctx, m, 0); err != nil { // 0: a direct message has no membership version
		log.Fatal(err) // the message stays pending, and the sweep delivers it
	}
	<-arrived
	raw, _ := sub.Next()
	var fr fanout.MessageFrame
	if err := json.Unmarshal(raw, &fr); err != nil {
		log.Fatal(err)
	}
	fmt.Println("recipient got:", fr.Type, fr.Seq, fr.Content)

	if err := d.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", env.status(m.ID))
	// Output:
	// recipient got: message 1 lunch?
	// status: sent
}

// The backstop: whatever is still pending a moment after it was written
// is published and marked by the runner's deliver-pending sweep.
func ExampleDeliverer_Sweep() {
	ctx := context.Background()
	env := newExampleEnv()
	defer env.done()
	d := delivery.New(env.pool, env.fanout, delivery.Config{})

	// The writer crashed between commit and publish: two messages wait.
	a, b := env.send("first"), env.send("second")

	// The runner sweeps what is pending DELIVERY_BACKSTOP_DELAY (2 s)
	// after it was written; 0 here takes everything pending now.
	n, err := d.Sweep(ctx, 0, 500, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published:", n)
	fmt.Println("statuses:", env.status(a.ID), env.status(b.ID))

	// A second sweep finds nothing left.
	n, err = d.Sweep(ctx, 0, 500, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published again:", n)
	// Output:
	// published: 2
	// statuses: sent sent
	// published again: 0
}

// A stored message's frame: an encrypted one travels without content.
func ExampleFrame() {
	content := "hi"
	plain := db.Message{ID: uuid.Nil, Seq: 7, Content: &content, Status: db.MessagePending}
	sealed := db.Message{ID: uuid.Nil, Seq: 8, Ciphertext: []byte{1, 2, 3}, Status: db.MessagePending}

	for _, m := range []db.Message{plain, sealed} {
		fr := delivery.Frame(m)
		fmt.Printf("seq %d: content %q, encrypted %v\n", fr.Seq, fr.Content, fr.Encrypted)
	}
	// Output:
	// seq 7: content "hi", encrypted false
	// seq 8: content "", encrypted true
}
