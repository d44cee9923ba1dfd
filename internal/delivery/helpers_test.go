package delivery

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/outbox"
)

// testBundle is what a delivery test works with: its own database and
// Redis prefix, and a Deliverer on them.
type testBundle struct {
	pool   *pgxpool.Pool
	rdb    *redis.Client
	fanout *fanout.Fanout
	prefix string
	ob     *outbox.Outbox
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	rdb, prefix := dbtest.Redis(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)
	return &testBundle{pool: pool, rdb: rdb, fanout: fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: prefix}}), prefix: prefix, ob: ob}
}

// pending stores a message the way the gateway does (no send-message
// job) and returns it as stored.
func (b *testBundle) pending(t *testing.T) db.Message {
	t.Helper()
	ctx := context.Background()
	res, err := b.ob.Send(ctx, b.pool, outbox.Message{ConversationID: uuid.New(), SenderID: uuid.New(),
		RecipientID: uuid.New(), Content: "hi", CallerPublishes: true})
	require.NoError(t, err)
	m, err := db.GetMessage(ctx, b.pool, res.ID)
	require.NoError(t, err)
	return m
}

// refuse makes Redis refuse m's cache update: its conversation's
// recent-messages key becomes a string.
func (b *testBundle) refuse(t *testing.T, m db.Message) {
	t.Helper()
	require.NoError(t, b.rdb.Set(context.Background(), b.prefix+"recent:{"+m.ConversationID.String()+"}", "not a sorted set", time.Minute).Err())
}

func (b *testBundle) status(t *testing.T, id uuid.UUID) db.MessageStatus {
	t.Helper()
	m, err := db.GetMessage(context.Background(), b.pool, id)
	require.NoError(t, err)
	return m.Status
}

var discard = slog.New(slog.DiscardHandler)
