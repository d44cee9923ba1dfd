package main

import (
	"bytes"
	"context"
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
		err := run(ctx, args, getenv, &out)
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
