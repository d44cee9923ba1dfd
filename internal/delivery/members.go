package delivery

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/db"
)

// maxCachedSpans bounds the membership windows a Deliverer keeps (about
// 40 bytes each: some 8 MiB); past it the cache starts again empty.
const maxCachedSpans = 200_000

// memberships caches group memberships, each stamped with the version it
// was read at. A message carries the membership version its send saw
// under the group's row lock (outbox.Result.MembershipVersion); a cached
// membership at that version or later answers for it, since a message's
// audience is a function of its seq (the members whose window covers
// it), and a later version only adds windows that start after it or
// closes windows after it. So a membership change is never served stale.
type memberships struct {
	mu      sync.Mutex
	byGroup map[uuid.UUID]db.Membership
	spans   int // windows held in byGroup
}

// get returns the cached membership of group if it is at version or
// later.
func (c *memberships) get(group uuid.UUID, version int64) (db.Membership, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.byGroup[group]
	return m, ok && version > 0 && m.Version >= version
}

// put keeps m for group unless a later version is cached already.
func (c *memberships) put(group uuid.UUID, m db.Membership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byGroup == nil || c.spans+len(m.Spans) > maxCachedSpans {
		c.byGroup, c.spans = make(map[uuid.UUID]db.Membership), 0
	}
	if old, ok := c.byGroup[group]; !ok || old.Version < m.Version {
		c.spans += len(m.Spans) - len(old.Spans)
		c.byGroup[group] = m
	}
}

// audiences returns the membership of every group that a pending message
// of ms belongs to: from the cache when versions (the membership version
// each group's message was sent at, from the send's transaction) says it
// is current enough, else read from Postgres in one statement. Messages
// without a known version (the sweep's, a worker's) are always read.
func (d *Deliverer) audiences(ctx context.Context, ms []db.Message, versions map[uuid.UUID]int64) (map[uuid.UUID]db.Membership, error) {
	var out map[uuid.UUID]db.Membership
	var missing []uuid.UUID
	for _, m := range ms {
		if !m.IsGroup() || m.Status != db.MessagePending {
			continue
		}
		if _, done := out[m.ConversationID]; done {
			continue
		}
		if out == nil {
			out = make(map[uuid.UUID]db.Membership)
		}
		if cached, ok := d.members.get(m.ConversationID, versions[m.ConversationID]); ok {
			out[m.ConversationID] = cached
			continue
		}
		out[m.ConversationID] = db.Membership{}
		missing = append(missing, m.ConversationID)
	}
	if len(missing) == 0 {
		return out, nil
	}
	read, err := db.GroupMemberships(ctx, d.pool, missing)
	if err != nil {
		return nil, err
	}
	for _, g := range missing {
		m := read[g]
		out[g] = m
		d.members.put(g, m)
	}
	return out, nil
}
