package workers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/workers"
)

func TestCryptoRotateRewrapsTheConversationKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	k := func(c byte) string {
		return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{c}, keyring.KeySize))
	}
	old, err := keyring.Parse("k1:"+k(1), "k1")
	require.NoError(t, err)
	conv, id := uuid.New(), uuid.New()
	sealed, _, err := keyring.NewSealer(old).Seal(ctx, pool, conv, id, "keep me readable")
	require.NoError(t, err)

	next, err := keyring.Parse("k1:"+k(1)+",k2:"+k(2), "k2")
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := river.NewWorkers()
	require.NoError(t, workers.Register(ws, workers.Deps{Pool: pool, Logger: logger, Crypto: workers.CryptoConfig{Sealer: keyring.NewSealer(next)}}, jobs.DefaultQueues()))
	r, err := runner.New(pool, runner.Config{Queues: jobs.DefaultQueues(), Workers: ws, Logger: logger})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { _ = r.Shutdown(ctx) })

	res, err := r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpRotate, ConversationID: conv}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return job(t, pool, res.Job.ID).State == "completed" }, 20*time.Second, 20*time.Millisecond)
	var kek string
	require.NoError(t, pool.QueryRow(ctx, `SELECT kek_id FROM conversation_keys WHERE conversation_id = $1`, conv).Scan(&kek))
	require.Equal(t, "k2", kek)

	// Readable with the new keyring, even once k1 is retired.
	retired, err := keyring.Parse("k2:"+k(2), "k2")
	require.NoError(t, err)
	key := "conversation-key-v1"
	plain, err := keyring.NewSealer(retired).Open(ctx, pool, dbMessage(conv, id, sealed, key))
	require.NoError(t, err)
	require.Equal(t, "keep me readable", plain)
}

func dbMessage(conv, id uuid.UUID, sealed []byte, key string) db.Message {
	return db.Message{ID: id, ConversationID: conv, Ciphertext: sealed, KeyID: &key}
}

// cryptoBundle is a database with one conversation of plaintext
// history, its search entries and Redis cache, and a runner to start.
type cryptoBundle struct {
	pool      *pgxpool.Pool
	rdb       *redis.Client
	prefix    string
	outbox    *outbox.Outbox
	fanout    *fanout.Fanout
	sealer    *keyring.Sealer
	exportDir string
	conv      uuid.UUID
	a, b      uuid.UUID
	texts     []string // by seq-1
	// start runs the workers with a sealer over ring and chunkSize rows
	// per transaction.
	start func(ring *keyring.Keyring, chunkSize int) *runner.Runner
}

func testKey(c byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{c}, keyring.KeySize))
}

func setupCrypto(t *testing.T, n int) *cryptoBundle {
	t.Helper()
	ctx := context.Background()
	b := &cryptoBundle{pool: dbtest.Pool(t), conv: uuid.New(), a: uuid.New(), b: uuid.New(), exportDir: filepath.Join(t.TempDir(), "exports")}
	b.rdb, b.prefix = dbtest.Redis(t)
	b.fanout = fanout.New(b.rdb, fanout.Config{Keys: fanout.Keys{Prefix: b.prefix}})
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	b.outbox, err = outbox.New(client, outbox.Config{})
	require.NoError(t, err)
	ring, err := keyring.Parse("k1:"+testKey(1), "k1")
	require.NoError(t, err)
	b.sealer = keyring.NewSealer(ring)

	for i := range n {
		text := fmt.Sprintf("zebra-secret-%d plaintext", i+1)
		res, err := b.outbox.Send(ctx, b.pool, outbox.Message{ConversationID: b.conv, SenderID: b.a, RecipientID: b.b, Content: text})
		require.NoError(t, err)
		require.Equal(t, int64(i+1), res.Seq)
		b.texts = append(b.texts, text)
		require.NoError(t, db.SyncSearchEntry(ctx, b.pool, res.ID, "simple"))
		m, err := db.GetMessage(ctx, b.pool, res.ID)
		require.NoError(t, err)
		require.NoError(t, b.fanout.PublishMessage(ctx, delivery.Frame(m)))
	}
	// The send jobs' work is done by hand above; only the jobs under test run.
	_, err = b.pool.Exec(ctx, `DELETE FROM river_job`)
	require.NoError(t, err)
	require.True(t, b.redisHolds(t, b.texts[0]), "precondition: the cache holds plaintext")

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.start = func(ring *keyring.Keyring, chunkSize int) *runner.Runner {
		ws := river.NewWorkers()
		require.NoError(t, workers.Register(ws, workers.Deps{
			Pool: b.pool, Logger: logger, Fanout: b.fanout,
			Crypto: workers.CryptoConfig{Sealer: keyring.NewSealer(ring), ExportDir: b.exportDir, ChunkSize: chunkSize},
		}, jobs.DefaultQueues()))
		r, err := runner.New(b.pool, runner.Config{Queues: jobs.DefaultQueues(), Workers: ws, Logger: logger})
		require.NoError(t, err)
		require.NoError(t, r.Start(ctx))
		t.Cleanup(func() { _ = r.Shutdown(ctx) })
		return r
	}
	return b
}

// switchToEncrypted flips the conversation and enqueues its encrypt job.
func (b *cryptoBundle) switchToEncrypted(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	id, err := b.outbox.EncryptConversationTx(ctx, tx, b.conv)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return id
}

// redisHolds reports whether any Redis key of this test holds s.
func (b *cryptoBundle) redisHolds(t *testing.T, s string) bool {
	t.Helper()
	ctx := context.Background()
	keys, err := b.rdb.Keys(ctx, b.prefix+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		var vals []string
		switch typ := b.rdb.Type(ctx, k).Val(); typ {
		case "zset":
			vals = b.rdb.ZRange(ctx, k, 0, -1).Val()
		case "string":
			vals = []string{b.rdb.Get(ctx, k).Val()}
		case "hash":
			for f, v := range b.rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "list":
			vals = b.rdb.LRange(ctx, k, 0, -1).Val()
		default:
			t.Fatalf("key %s has type %s this check does not read", k, typ)
		}
		for _, v := range vals {
			if strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}

// requireNoPlaintextStored scans messages, job args and the search index.
func (b *cryptoBundle) requireNoPlaintextStored(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var plain int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE content IS NOT NULL`).Scan(&plain))
	require.Zero(t, plain)
	var entries int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM message_search`).Scan(&entries))
	require.Zero(t, entries, "encrypted messages are not indexed")
	for _, text := range b.texts {
		word := strings.Fields(text)[0]
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM messages WHERE position($1::bytea IN ciphertext) > 0 OR content LIKE '%' || $2 || '%')
			     + (SELECT count(*) FROM river_job WHERE args::text LIKE '%' || $2 || '%' OR metadata::text LIKE '%' || $2 || '%')
			     + (SELECT count(*) FROM message_search WHERE document::text LIKE '%' || $2 || '%')`,
			[]byte(word), word).Scan(&n))
		require.Zero(t, n, "no stored bytes hold %q", word)
		require.False(t, b.redisHolds(t, word), "Redis holds %q", word)
	}
}

// requireReadable checks that every message opens to its original text
// and returns the stored ciphertexts by seq.
func (b *cryptoBundle) requireReadable(t *testing.T, s *keyring.Sealer) map[int64][]byte {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `SELECT id FROM messages WHERE conversation_id = $1 ORDER BY seq`, b.conv)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	require.NoError(t, err)
	require.Len(t, ids, len(b.texts))
	out := map[int64][]byte{}
	for _, id := range ids {
		m, err := db.GetMessage(ctx, b.pool, id)
		require.NoError(t, err)
		require.Nil(t, m.Content)
		plain, err := s.Open(ctx, b.pool, m)
		require.NoError(t, err)
		require.Equal(t, b.texts[m.Seq-1], plain)
		out[m.Seq] = m.Ciphertext
	}
	return out
}

func waitState(t *testing.T, pool *pgxpool.Pool, id int64, state string) jobState {
	t.Helper()
	require.Eventually(t, func() bool { return job(t, pool, id).State == state }, 20*time.Second, 20*time.Millisecond,
		"job %d: %+v", id, job(t, pool, id))
	return job(t, pool, id)
}

func jobOutput[T any](t *testing.T, pool *pgxpool.Pool, id int64) T {
	t.Helper()
	var out struct {
		Output T `json:"output"`
	}
	var meta []byte
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT metadata FROM river_job WHERE id = $1`, id).Scan(&meta))
	require.NoError(t, json.Unmarshal(meta, &out))
	return out.Output
}

func TestCryptoEncryptSealsHistoryAndDecryptExportsIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCrypto(t, 5)
	// A deleted message is sealed (and exported) too.
	var deletedID uuid.UUID
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT id FROM messages WHERE conversation_id = $1 AND seq = 4`, b.conv).Scan(&deletedID))
	_, _, err := db.SoftDeleteMessage(ctx, b.pool, deletedID, b.a)
	require.NoError(t, err)

	jobID := b.switchToEncrypted(t)
	// From the switch on, plaintext is refused on every insert path.
	_, err = b.outbox.Send(ctx, b.pool, outbox.Message{ConversationID: b.conv, SenderID: b.a, RecipientID: b.b, Content: "late plaintext"})
	require.ErrorIs(t, err, outbox.ErrEncryptedConversation)

	r := b.start(b.sealer.Keyring(), 2)
	waitState(t, b.pool, jobID, "completed")
	out := jobOutput[workers.EncryptOutput](t, b.pool, jobID)
	require.Equal(t, workers.EncryptOutput{Operation: "encrypt", Sealed: 5, Chunks: 3}, out)
	b.requireNoPlaintextStored(t)
	b.requireReadable(t, b.sealer)
	// Its progress record, kept while it ran, ends whole.
	var rawProgress []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT metadata->'progress' FROM river_job WHERE id = $1`, jobID).Scan(&rawProgress))
	var progress workers.Progress
	require.NoError(t, json.Unmarshal(rawProgress, &progress))
	require.Equal(t, 100.0, progress.Percentage)
	require.Equal(t, "seal history", progress.Step)
	require.Equal(t, 3, progress.CurrentStep)
	require.Equal(t, 3, progress.TotalSteps)

	// Decrypt: an export of every message in seq order, 0600.
	requester := uuid.New()
	res, err := r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpDecrypt, ConversationID: b.conv, RequestedBy: requester}, nil)
	require.NoError(t, err)
	waitState(t, b.pool, res.Job.ID, "completed")
	exp := jobOutput[workers.ExportOutput](t, b.pool, res.Job.ID)
	require.Equal(t, int64(5), exp.Rows)
	require.Equal(t, filepath.Join(b.exportDir, workers.ExportFileName(res.Job.ID)), exp.Path)
	st, err := os.Stat(exp.Path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	raw, err := os.ReadFile(exp.Path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	require.Len(t, lines, 5)
	for i, l := range lines {
		var line workers.ExportLine
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		require.Equal(t, int64(i+1), line.Seq)
		require.Equal(t, b.texts[i], line.Content)
		require.Equal(t, b.a, line.SenderID)
		require.Equal(t, line.ID == deletedID, line.DeletedAt != nil)
	}
	entries, err := os.ReadDir(b.exportDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no partial file left")
	// The export's content is in the file only, never in the job row.
	b.requireNoPlaintextStored(t)
}

func TestCryptoEncryptResumesAfterAnInterruptedRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCrypto(t, 5)
	// Fault injection: sealing seq 3 fails, so the first run stops after
	// its first chunk of 2 committed.
	_, err := b.pool.Exec(ctx, `
		CREATE FUNCTION test_fail_seq3() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.seq = 3 AND NEW.content IS NULL THEN RAISE EXCEPTION 'injected fault'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_fail_seq3 BEFORE UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION test_fail_seq3();`)
	require.NoError(t, err)

	jobID := b.switchToEncrypted(t)
	b.start(b.sealer.Keyring(), 2)
	// The first attempt fails; the next comes after the queue's backoff
	// (2 s), long enough to look at what the first one left.
	require.Eventually(t, func() bool { return len(job(t, b.pool, jobID).Errors) > 0 }, 20*time.Second, 10*time.Millisecond)
	require.Contains(t, job(t, b.pool, jobID).Errors[0].Error, "injected fault")
	var sealed []int64
	rows, err := b.pool.Query(ctx, `SELECT seq FROM messages WHERE conversation_id = $1 AND content IS NULL ORDER BY seq`, b.conv)
	require.NoError(t, err)
	sealed, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, sealed, "the first chunk committed on its own")
	var before [][]byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT array_agg(ciphertext ORDER BY seq) FROM messages WHERE conversation_id = $1 AND seq <= 2`, b.conv).Scan(&before))

	_, err = b.pool.Exec(ctx, `DROP TRIGGER test_fail_seq3 ON messages`)
	require.NoError(t, err)
	s := waitState(t, b.pool, jobID, "completed")
	require.Equal(t, 2, s.Attempt, "resumed by River's retry")
	require.Equal(t, int64(3), jobOutput[workers.EncryptOutput](t, b.pool, jobID).Sealed, "the resumed run sealed only what was left")
	b.requireNoPlaintextStored(t)
	after := b.requireReadable(t, b.sealer)
	require.Equal(t, before[0], after[1], "not sealed twice")
	require.Equal(t, before[1], after[2], "not sealed twice")
}

func TestCryptoTamperedCiphertextCancelsTheExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCrypto(t, 3)
	jobID := b.switchToEncrypted(t)
	r := b.start(b.sealer.Keyring(), 2)
	waitState(t, b.pool, jobID, "completed")
	_, err := b.pool.Exec(ctx, `UPDATE messages SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1) WHERE conversation_id = $1 AND seq = 3`, b.conv)
	require.NoError(t, err)

	res, err := r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpDecrypt, ConversationID: b.conv, RequestedBy: uuid.New()}, nil)
	require.NoError(t, err)
	s := waitState(t, b.pool, res.Job.ID, "cancelled")
	require.Equal(t, 1, s.Attempt, "not retried")
	require.Contains(t, s.Errors[0].Error, "does not authenticate (wrong key or tampered)")
	for _, text := range b.texts {
		require.NotContains(t, s.Errors[0].Error, strings.Fields(text)[0])
	}
	entries, err := os.ReadDir(b.exportDir)
	require.NoError(t, err)
	require.Empty(t, entries, "the partial export is removed")
}

func TestCryptoUnknownKeyIDCancels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCrypto(t, 2)
	// The conversation's data key exists, wrapped by k1 ...
	_, err := b.sealer.ConversationKey(ctx, b.pool, b.conv, true)
	require.NoError(t, err)
	jobID := b.switchToEncrypted(t)
	// ... but this runner only knows k2.
	other, err := keyring.Parse("k2:"+testKey(2), "k2")
	require.NoError(t, err)
	r := b.start(other, 2)
	s := waitState(t, b.pool, jobID, "cancelled")
	require.Contains(t, s.Errors[0].Error, `unknown key id "k1"`)
	var plain int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE content IS NOT NULL`).Scan(&plain))
	require.Equal(t, 2, plain, "nothing sealed under a key the runner cannot read")

	// An export that needs the k1-wrapped key is cancelled too.
	_, err = b.pool.Exec(ctx, `UPDATE messages SET content = NULL, ciphertext = '\x00112233445566778899aabbccddeeff00112233445566778899', key_id = 'conversation-key-v1' WHERE conversation_id = $1 AND seq = 2`, b.conv)
	require.NoError(t, err)
	res, err := r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpDecrypt, ConversationID: b.conv, RequestedBy: uuid.New()}, nil)
	require.NoError(t, err)
	s = waitState(t, b.pool, res.Job.ID, "cancelled")
	require.Contains(t, s.Errors[0].Error, `unknown key id "k1"`)
	entries, err := os.ReadDir(b.exportDir)
	require.NoError(t, err)
	require.Empty(t, entries, "the partial export is removed")
}

// rotate with reencrypt_content moves every message to a fresh data key
// (generation 2, wrapped by the active key) and retires generation 1. A
// sender that stored a message sealed with generation 1 while the job ran
// held that generation until it committed: the job waited, found the
// message and moved it too. Afterwards generation 1 is gone and a message
// sealed with it is refused (ErrKeyRetired), writing nothing.
func TestCryptoReencryptMovesContentToANewDataKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCrypto(t, 5)
	ring, err := keyring.Parse("k1:"+testKey(1)+",k2:"+testKey(2), "k2")
	require.NoError(t, err)
	sealer := keyring.NewSealer(ring)
	r := b.start(ring, 2)
	waitState(t, b.pool, b.switchToEncrypted(t), "completed")
	before := b.requireReadable(t, sealer)

	// A sender seals with generation 1 and stores it in a transaction it
	// keeps open while the re-encryption runs.
	late := uuid.New()
	ct, label, err := sealer.Seal(ctx, b.pool, b.conv, late, "late-zebra-secret")
	require.NoError(t, err)
	require.Equal(t, "conversation-key-v1", label)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = b.outbox.SendTx(ctx, tx, outbox.Message{ID: late, ConversationID: b.conv, SenderID: b.a, RecipientID: b.b, Ciphertext: ct, KeyID: label})
	require.NoError(t, err)
	b.texts = append(b.texts, "late-zebra-secret")

	res, err := r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpRotate, ConversationID: b.conv, ReencryptContent: true}, nil)
	require.NoError(t, err)
	// The job reaches the retirement and waits for the sender's lock.
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%DELETE FROM conversation_keys%'`).Scan(&waiting))
		return waiting > 0
	}, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, tx.Commit(ctx))

	waitState(t, b.pool, res.Job.ID, "completed")
	out := jobOutput[workers.ReencryptOutput](t, b.pool, res.Job.ID)
	require.Equal(t, workers.ReencryptOutput{Operation: "rotate", Generation: 2, Resealed: 6, Retired: 1}, out)
	after := b.requireReadable(t, sealer)
	for seq, old := range before {
		require.NotEqual(t, old, after[seq], "message %d re-sealed", seq)
	}
	var labels []string
	rows, err := b.pool.Query(ctx, `SELECT DISTINCT key_id FROM messages WHERE conversation_id = $1`, b.conv)
	require.NoError(t, err)
	labels, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"conversation-key-v2"}, labels)
	var gens []int32
	rows, err = b.pool.Query(ctx, `SELECT generation FROM conversation_keys WHERE conversation_id = $1`, b.conv)
	require.NoError(t, err)
	gens, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	require.Equal(t, []int32{2}, gens, "generation 1 retired")
	var kek string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT kek_id FROM conversation_keys WHERE conversation_id = $1`, b.conv).Scan(&kek))
	require.Equal(t, "k2", kek)

	// Sealed with the retired generation: refused, nothing written.
	stale := uuid.New()
	_, err = b.outbox.Send(ctx, b.pool, outbox.Message{ID: stale, ConversationID: b.conv, SenderID: b.a, RecipientID: b.b, Ciphertext: ct, KeyID: label})
	require.ErrorIs(t, err, outbox.ErrKeyRetired)
	_, err = db.GetMessage(ctx, b.pool, stale)
	require.ErrorIs(t, err, db.ErrNotFound)
	// New messages use generation 2.
	_, label, err = sealer.Seal(ctx, b.pool, b.conv, uuid.New(), "x")
	require.NoError(t, err)
	require.Equal(t, "conversation-key-v2", label)

	// Running it again makes a third generation and retires the second.
	res, err = r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpRotate, ConversationID: b.conv, ReencryptContent: true}, nil)
	require.NoError(t, err)
	waitState(t, b.pool, res.Job.ID, "completed")
	require.Equal(t, workers.ReencryptOutput{Operation: "rotate", Generation: 3, Resealed: 6, Retired: 1}, jobOutput[workers.ReencryptOutput](t, b.pool, res.Job.ID))
	b.requireReadable(t, sealer)
}

// TestCryptoReencryptMovesHeldScheduledMessages checks that a sealed
// scheduled message moves to the new key generation with the messages,
// that no generation it uses is retired, and that it opens once sent.
func TestCryptoReencryptMovesHeldScheduledMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCrypto(t, 2)
	ring, err := keyring.Parse("k1:"+testKey(1)+",k2:"+testKey(2), "k2")
	require.NoError(t, err)
	sealer := keyring.NewSealer(ring)
	r := b.start(ring, 2)
	waitState(t, b.pool, b.switchToEncrypted(t), "completed")

	held := uuid.New()
	ct, label, err := sealer.Seal(ctx, b.pool, b.conv, held, "held-zebra-secret")
	require.NoError(t, err)
	_, err = b.outbox.Schedule(ctx, b.pool, outbox.Message{ID: held, ConversationID: b.conv, SenderID: b.a, RecipientID: b.b,
		Ciphertext: ct, KeyID: label}, time.Now().Add(time.Hour))
	require.NoError(t, err)

	res, err := r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpRotate, ConversationID: b.conv, ReencryptContent: true}, nil)
	require.NoError(t, err)
	waitState(t, b.pool, res.Job.ID, "completed")
	require.Equal(t, workers.ReencryptOutput{Operation: "rotate", Generation: 2, Resealed: 3, Retired: 1},
		jobOutput[workers.ReencryptOutput](t, b.pool, res.Job.ID), "two messages and the held one")
	var heldLabel string
	var heldCT []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT key_id, ciphertext FROM scheduled_messages WHERE id = $1`, held).Scan(&heldLabel, &heldCT))
	require.Equal(t, "conversation-key-v2", heldLabel)
	require.NotEqual(t, ct, heldCT)

	// Released after the rotation: a message under the new generation that
	// opens to what was sealed.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, released, err := b.outbox.ReleaseTx(ctx, tx, held)
	require.NoError(t, err)
	require.True(t, released)
	require.NoError(t, tx.Commit(ctx))
	m, err := db.GetMessage(ctx, b.pool, held)
	require.NoError(t, err)
	require.Equal(t, "conversation-key-v2", *m.KeyID)
	text, err := sealer.Open(ctx, b.pool, m)
	require.NoError(t, err)
	require.Equal(t, "held-zebra-secret", text)
}

// TestCryptoEncryptSealsScheduledMessages checks that switching a
// conversation to encrypted also seals its scheduled messages, so one
// held across the switch is sent sealed instead of refused, and none keeps
// plaintext.
func TestCryptoEncryptSealsScheduledMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupCrypto(t, 1)
	held := uuid.New()
	_, err := b.outbox.Schedule(ctx, b.pool, outbox.Message{ID: held, ConversationID: b.conv, SenderID: b.a, RecipientID: b.b,
		Content: "held-zebra-plaintext"}, time.Now().Add(time.Hour))
	require.NoError(t, err)
	ring, err := keyring.Parse("k1:"+testKey(1), "k1")
	require.NoError(t, err)
	sealer := keyring.NewSealer(ring)
	b.start(ring, 2)

	job := b.switchToEncrypted(t)
	waitState(t, b.pool, job, "completed")
	out := jobOutput[workers.EncryptOutput](t, b.pool, job)
	require.EqualValues(t, 1, out.Scheduled)
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM scheduled_messages
		WHERE content IS NOT NULL OR position('zebra'::bytea in ciphertext) > 0`).Scan(&n))
	require.Zero(t, n, "no scheduled message keeps plaintext")

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, released, err := b.outbox.ReleaseTx(ctx, tx, held)
	require.NoError(t, err, "sent sealed, not refused by the encrypted conversation")
	require.True(t, released)
	require.NoError(t, tx.Commit(ctx))
	m, err := db.GetMessage(ctx, b.pool, held)
	require.NoError(t, err)
	require.Nil(t, m.Content)
	text, err := sealer.Open(ctx, b.pool, m)
	require.NoError(t, err)
	require.Equal(t, "held-zebra-plaintext", text)
}
