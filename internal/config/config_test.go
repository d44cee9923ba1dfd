package config_test

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/config"
)

func reader(kv map[string]string) *config.Reader {
	return config.NewReader(func(k string) string { return kv[k] })
}

func TestValuesAndDefaults(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"N": " 7 ", "D": "250ms", "B": "yes", "A": "127.0.0.1:0", "S": "x"})
	require.Equal(t, 7, r.Int("N", 1, 0, 10))
	require.Equal(t, 3, r.Int("UNSET", 3, 0, 10))
	require.Equal(t, 250*time.Millisecond, r.Duration("D", time.Second, 0, time.Hour))
	require.True(t, r.Bool("B", false))
	require.Equal(t, "127.0.0.1:0", r.Addr("A", ":1"))
	require.Equal(t, "x", r.String("S", "y"))
	require.Equal(t, config.DefaultDatabaseURL, r.DatabaseURL())
	require.NotNil(t, r.Logger(io.Discard))
	require.NoError(t, r.Err())
}

func TestProblemsAreCollectedAndNamed(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"N": "11", "D": "soon", "B": "maybe", "A": "8080", "LOG_FORMAT": "xml"})
	r.Int("N", 1, 0, 10)
	r.Duration("D", time.Second, 0, time.Hour)
	r.Bool("B", false)
	r.Addr("A", ":1")
	r.Logger(io.Discard)
	err := r.Err()
	for _, want := range []string{"N: 11 is out of range", `D: "soon" is not a duration`, `B: "maybe" is not a boolean`, `A: "8080" is not a listen address`, "LOG_FORMAT"} {
		require.ErrorContains(t, err, want)
	}
}

func TestLoopbackAddrRefusesWhatIsNotLoopback(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:0"} {
		r := reader(map[string]string{"PPROF_ADDR": ok})
		require.Equal(t, ok, r.LoopbackAddr("PPROF_ADDR"))
		require.NoError(t, r.Err(), ok)
	}
	require.Empty(t, reader(nil).LoopbackAddr("PPROF_ADDR"), "unset: no listener")
	for _, bad := range []string{":6060", "0.0.0.0:6060", "10.0.0.5:6060", "example.com:6060", "127.0.0.1"} {
		r := reader(map[string]string{"PPROF_ADDR": bad})
		require.Empty(t, r.LoopbackAddr("PPROF_ADDR"))
		require.ErrorContains(t, r.Err(), "PPROF_ADDR", bad)
	}
}
