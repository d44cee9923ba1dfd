package httpserve_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/httpserve"
)

func TestProfilerServesRuntimeProfilesOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.DiscardHandler)
	none, err := httpserve.ListenProfiler("", logger, "test")
	require.NoError(t, err)
	require.Nil(t, none, "no address, no listener")
	require.NoError(t, none.Close(), "a nil server closes harmlessly")

	s, err := httpserve.ListenProfiler("127.0.0.1:0", logger, "test")
	require.NoError(t, err)
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr() + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "goroutine profile:")

	resp, err = http.Post("http://"+s.Addr()+"/debug/pprof/goroutine", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "read-only")
}
