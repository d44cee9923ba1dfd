package delivery

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
)

// A cached membership answers only for messages sent at its version or
// before; a later version is read again, and an older read never
// replaces a newer one.
func TestMembershipCacheNeverServesAStaleVersion(t *testing.T) {
	var c memberships
	g := uuid.New()
	a, b := uuid.New(), uuid.New()
	left := int64(5)
	v3 := db.Membership{Version: 3, Spans: []db.Span{{UserID: a, JoinedSeq: 1}, {UserID: b, JoinedSeq: 1}}}
	v4 := db.Membership{Version: 4, Spans: []db.Span{{UserID: a, JoinedSeq: 1}, {UserID: b, JoinedSeq: 1, LeftSeq: &left}}}

	_, ok := c.get(g, 3)
	require.False(t, ok, "empty")
	c.put(g, v3)
	_, ok = c.get(g, 3)
	require.True(t, ok)
	_, ok = c.get(g, 4)
	require.False(t, ok, "a message sent after a change needs the new membership")
	_, ok = c.get(g, 0)
	require.False(t, ok, "an unknown version is always read")

	c.put(g, v4)
	c.put(g, v3) // a slower read of the older version arrives late
	m, ok := c.get(g, 3)
	require.True(t, ok, "a newer membership answers for older messages too")
	require.Equal(t, int64(4), m.Version)
	require.Equal(t, []uuid.UUID{b}, m.Audience(5, a), "b sees the message that removed them")
	require.Empty(t, m.Audience(6, a), "and nothing after it")
	require.Equal(t, 2, c.spans)
}
