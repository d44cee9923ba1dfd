package fanout

import "github.com/google/uuid"

// DefaultPrefix is the Redis key and channel prefix when none is configured.
const DefaultPrefix = "msgrunner:"

// Keys names Redis keys and channels under a prefix, so several
// deployments (or tests) can share one Redis, including its pub/sub, which
// ignores database numbers.
type Keys struct{ Prefix string }

// UserChannel is the pub/sub channel of a user's frames.
func (k Keys) UserChannel(user uuid.UUID) string { return k.Prefix + "user:{" + user.String() + "}" }

// recent is the sorted set of a conversation's latest message frames,
// scored by seq.
func (k Keys) recent(conv uuid.UUID) string { return k.Prefix + "recent:{" + conv.String() + "}" }

// recentVersion is bumped when a cached message changes (edit, delete),
// so a refill computed from an older read is refused.
func (k Keys) recentVersion(conv uuid.UUID) string {
	return k.Prefix + "recentv:{" + conv.String() + "}"
}

// presence marks a user as connected to some gateway (a TTL key).
func (k Keys) presence(user uuid.UUID) string { return k.Prefix + "presence:{" + user.String() + "}" }

// unread is the hash of a user's cached unread counts per conversation.
func (k Keys) unread(user uuid.UUID) string { return k.Prefix + "unread:{" + user.String() + "}" }

// unreadVersion is bumped whenever a user's unread counts change, which
// invalidates the cached hash.
func (k Keys) unreadVersion(user uuid.UUID) string {
	return k.Prefix + "unreadv:{" + user.String() + "}"
}
