package clocktest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/clocktest"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := clocktest.New(start)
	require.Equal(t, start, c.Now())
	require.Equal(t, start, c.Now(), "reading does not move it")
	require.Equal(t, start.Add(90*time.Second), c.Advance(90*time.Second))
	require.Equal(t, start.Add(90*time.Second), c.Now())
	c.Set(start)
	require.Equal(t, start, c.Now())
}
