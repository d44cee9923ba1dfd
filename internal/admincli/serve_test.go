package admincli

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
)

// With DATABASE_READ_URL, admin serve runs its reports on the standby.
func TestServeRunsReportsOnTheReadReplica(t *testing.T) {
	t.Parallel()
	pair := dbtest.NewPostgresPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const token = "replica-test-operator-token"
	vars := map[string]string{
		"DATABASE_URL": pair.PrimaryURL(), "DATABASE_READ_URL": pair.StandbyURL(),
		"ADMIN_ADDR": "127.0.0.1:0", "ADMIN_TOKEN": token, "LOG_LEVEL": "error",
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, func(k string) string { return vars[k] }, io.Discard, func(addr string) { ready <- addr })
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("admin serve returned before it was ready: %v", err)
	}
	standby, err := pgx.Connect(ctx, pair.StandbyURL())
	require.NoError(t, err)
	defer standby.Close(context.Background())
	// The pool keeps its connection open, showing the last query it ran.
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/reports/delivery", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var n int
		require.NoError(t, standby.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'msgrunner-admin' AND query LIKE '%DeliveryReport%'`).Scan(&n))
		return n > 0
	}, 20*time.Second, 200*time.Millisecond, "the report ran on the standby")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("admin serve did not stop")
	}
}
