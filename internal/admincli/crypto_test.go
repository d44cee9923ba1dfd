package admincli

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestCryptoEncryptAndExportCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	conv := uuid.New()
	_, err = conn.Exec(ctx, `INSERT INTO conversations (id) VALUES ($1)`, conv)
	require.NoError(t, err)
	getenv := env(map[string]string{"DATABASE_URL": url, "USER": "ops"})
	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, getenv, &out, io.Discard)
		return out.String(), err
	}

	out, err := admin("encrypt", "--conversation", conv.String())
	require.NoError(t, err)
	require.Contains(t, out, "switched to encrypted")
	var encrypted bool
	var jobs int
	require.NoError(t, conn.QueryRow(ctx, `SELECT encrypted FROM conversations WHERE id = $1`, conv).Scan(&encrypted))
	require.True(t, encrypted)
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'encrypt-decrypt' AND args->>'operation' = 'encrypt' AND args->>'conversation_id' = $1`, conv.String()).Scan(&jobs))
	require.Equal(t, 1, jobs)

	_, err = admin("encrypt", "--conversation", uuid.NewString())
	require.ErrorContains(t, err, "no live conversation")

	requester := uuid.New()
	out, err = admin("export", "--conversation", conv.String(), "--requested-by", requester.String())
	require.NoError(t, err)
	require.Contains(t, out, "EXPORT_DIR")
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'operation' = 'decrypt' AND args->>'requested_by' = $1`, requester.String()).Scan(&jobs))
	require.Equal(t, 1, jobs)

	var ue *usageError
	_, err = admin("export", "--conversation", conv.String())
	require.ErrorAs(t, err, &ue)
	_, err = admin("encrypt", "--conversation", "nope")
	require.ErrorAs(t, err, &ue)
}

func TestRotateCommandEnqueuesPerConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	onOld, onNew := uuid.New(), uuid.New()
	for _, c := range []uuid.UUID{onOld, onNew} {
		_, err = conn.Exec(ctx, `INSERT INTO conversations (id) VALUES ($1)`, c)
		require.NoError(t, err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO conversation_keys (conversation_id, kek_id, wrapped_key) VALUES ($1, 'k1', '\x00'), ($2, 'k2', '\x00')`, onOld, onNew)
	require.NoError(t, err)
	admin := func(vars map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		vars["DATABASE_URL"] = url
		err := run(ctx, args, env(vars), &out, io.Discard)
		return out.String(), err
	}
	rotateJobs := func(conv uuid.UUID, reencrypt bool) int {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'operation' = 'rotate'
			AND args->>'conversation_id' = $1 AND coalesce((args->>'reencrypt_content')::bool, false) = $2`, conv.String(), reencrypt).Scan(&n))
		return n
	}

	var ue *usageError
	_, err = admin(map[string]string{}, "rotate", "--all")
	require.ErrorAs(t, err, &ue, "--all needs the active key id")
	_, err = admin(map[string]string{}, "rotate")
	require.ErrorAs(t, err, &ue)
	_, err = admin(map[string]string{}, "rotate", "--all", "--conversation", onOld.String())
	require.ErrorAs(t, err, &ue)
	require.Zero(t, rotateJobs(onOld, false)+rotateJobs(onNew, false))

	out, err := admin(map[string]string{"ENCRYPTION_ACTIVE_KEY": "k2"}, "rotate", "--all")
	require.NoError(t, err)
	require.Contains(t, out, "enqueued 1 rotate job")
	require.Equal(t, 1, rotateJobs(onOld, false), "the conversation still under k1")
	require.Zero(t, rotateJobs(onNew, false), "already under k2")

	out, err = admin(map[string]string{}, "rotate", "--all", "--reencrypt-content")
	require.NoError(t, err)
	require.Contains(t, out, "enqueued 2 rotate job(s) with reencrypt_content")
	require.Equal(t, 1, rotateJobs(onOld, true))
	require.Equal(t, 1, rotateJobs(onNew, true))

	_, err = admin(map[string]string{}, "rotate", "--conversation", onNew.String())
	require.NoError(t, err)
	require.Equal(t, 1, rotateJobs(onNew, false))
}
