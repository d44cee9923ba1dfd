package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// Conversation kinds.
const (
	KindDirect = "direct"
	KindGroup  = "group"
)

// Member roles in a group.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Member is a current member of a group.
type Member struct {
	UserID uuid.UUID
	Role   string
	// JoinedSeq is the seq of the system message that added them: they
	// see the group's messages from there on.
	JoinedSeq int64
}

// GroupLock is what LockGroup took: the seq for the change's system
// message, the membership version after the change, the current title.
type GroupLock struct {
	Seq               int64
	MembershipVersion int64
	Title             string
}

// Group is a group as one of its present or former members sees it.
type Group struct {
	ID                uuid.UUID
	Title             string
	CreatedAt         time.Time
	LastSeq           int64
	MembershipVersion int64
	// The caller's own membership.
	Role      string
	JoinedSeq int64
	LeftSeq   *int64
}

// Span is one membership window of a group: UserID sees the messages
// with JoinedSeq <= seq, and seq <= *LeftSeq once they left.
type Span struct {
	UserID    uuid.UUID
	JoinedSeq int64
	LeftSeq   *int64
}

// Covers reports whether seq falls in the window.
func (s Span) Covers(seq int64) bool {
	return s.JoinedSeq <= seq && (s.LeftSeq == nil || seq <= *s.LeftSeq)
}

// Membership is every membership window of a group at a version.
type Membership struct {
	Version int64
	Spans   []Span
}

// Audience returns who sees message seq of the group apart from its
// sender: the members whose window covers it.
func (m Membership) Audience(seq int64, sender uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(m.Spans))
	for _, s := range m.Spans {
		if s.UserID != sender && s.Covers(seq) {
			out = append(out, s.UserID)
		}
	}
	return out
}

// CreateGroup writes a new group titled title whose seq 1 is its
// creation message, with membership version 1, and returns when it was
// created. It must run in the transaction that adds the members and
// writes that message.
func CreateGroup(ctx context.Context, q Querier, id uuid.UUID, title string) (time.Time, error) {
	at, err := dbsqlc.New(q).CreateGroup(ctx, dbsqlc.CreateGroupParams{ID: id, Title: &title})
	return at, translate("creating group", err)
}

// LockGroup takes group id's next seq for a change's system message under
// its row lock (until the transaction ends) and bumps its membership
// version when membership is set. ErrNotFound for an unknown or deleted
// group or a direct conversation.
func LockGroup(ctx context.Context, q Querier, id uuid.UUID, membership bool) (GroupLock, error) {
	r, err := dbsqlc.New(q).LockGroup(ctx, dbsqlc.LockGroupParams{ID: id, Membership: membership})
	if err != nil {
		return GroupLock{}, translate("locking group", err)
	}
	return GroupLock{Seq: r.LastSeq, MembershipVersion: r.MembershipVersion, Title: deref(r.Title)}, nil
}

// CurrentMembers returns a group's current members in user id order.
func CurrentMembers(ctx context.Context, q Querier, id uuid.UUID) ([]Member, error) {
	rows, err := dbsqlc.New(q).CurrentMembers(ctx, id)
	if err != nil {
		return nil, translate("listing members", err)
	}
	out := make([]Member, len(rows))
	for i, r := range rows {
		out[i] = Member{UserID: r.UserID, Role: r.Role, JoinedSeq: r.JoinedSeq}
	}
	return out, nil
}

// AddMembers makes users[i] a member with roles[i] from joinedSeq on; a
// former member comes back with a fresh window. Current members are left
// as they are; it returns how many were added.
func AddMembers(ctx context.Context, q Querier, id uuid.UUID, users []uuid.UUID, roles []string, joinedSeq int64) (int64, error) {
	n, err := dbsqlc.New(q).UpsertMembers(ctx, dbsqlc.UpsertMembersParams{ConversationID: id, UserIds: users, Roles: roles, JoinedSeq: joinedSeq})
	return n, translate("adding members", err)
}

// EndMembership closes user's window on group id at leftSeq; false when
// they are not a current member.
func EndMembership(ctx context.Context, q Querier, id, user uuid.UUID, leftSeq int64) (bool, error) {
	n, err := dbsqlc.New(q).EndMembership(ctx, dbsqlc.EndMembershipParams{ConversationID: id, UserID: user, LeftSeq: &leftSeq})
	return n == 1, translate("removing member", err)
}

// SetMemberRole sets a current member's role; false when user is not one.
func SetMemberRole(ctx context.Context, q Querier, id, user uuid.UUID, role string) (bool, error) {
	n, err := dbsqlc.New(q).SetMemberRole(ctx, dbsqlc.SetMemberRoleParams{ConversationID: id, UserID: user, Role: role})
	return n == 1, translate("setting role", err)
}

// SetGroupTitle sets a group's title.
func SetGroupTitle(ctx context.Context, q Querier, id uuid.UUID, title string) error {
	return translate("setting title", dbsqlc.New(q).SetGroupTitle(ctx, dbsqlc.SetGroupTitleParams{ID: id, Title: &title}))
}

// InsertSystemMessage writes a group's system message (a change, as
// event JSON) at seq, from the member who made the change, and returns it
// as stored (pending, for the fast path to publish).
func InsertSystemMessage(ctx context.Context, q Querier, id, group, actor uuid.UUID, seq int64, event []byte) (Message, error) {
	at, err := dbsqlc.New(q).InsertSystemMessage(ctx, dbsqlc.InsertSystemMessageParams{
		ID: id, ConversationID: group, SenderID: actor, Seq: seq, Event: event,
	})
	if err != nil {
		return Message{}, translate("writing system message", err)
	}
	return Message{
		ID: id, ConversationID: group, SenderID: actor, Seq: seq, Priority: 3,
		Status: MessagePending, CreatedAt: at, Event: event,
	}, nil
}

// GetGroup returns group id with user's membership (current or past), or
// ErrNotFound when user never was a member or there is no such group.
func GetGroup(ctx context.Context, q Querier, id, user uuid.UUID) (Group, error) {
	r, err := dbsqlc.New(q).GetGroup(ctx, dbsqlc.GetGroupParams{ID: id, UserID: user})
	if err != nil {
		return Group{}, translate("getting group", err)
	}
	return Group{
		ID: r.ID, Title: deref(r.Title), CreatedAt: r.CreatedAt, LastSeq: r.LastSeq, MembershipVersion: r.MembershipVersion,
		Role: r.Role, JoinedSeq: r.JoinedSeq, LeftSeq: r.LeftSeq,
	}, nil
}

// GroupMemberships returns every membership window of the groups listed,
// by group; ids that are not groups are missing from the map. One
// statement.
func GroupMemberships(ctx context.Context, q Querier, ids []uuid.UUID) (map[uuid.UUID]Membership, error) {
	rows, err := dbsqlc.New(q).GroupSpans(ctx, ids)
	if err != nil {
		return nil, translate("reading group members", err)
	}
	out := make(map[uuid.UUID]Membership, len(ids))
	for _, r := range rows {
		m := out[r.ConversationID]
		m.Version = r.MembershipVersion
		m.Spans = append(m.Spans, Span{UserID: r.UserID, JoinedSeq: r.JoinedSeq, LeftSeq: r.LeftSeq})
		out[r.ConversationID] = m
	}
	return out, nil
}

// ConversationSummary is one line of a user's conversation list.
type ConversationSummary struct {
	ID      uuid.UUID
	Kind    string
	Title   string
	Members int64
	// The last message the user may see.
	LastID       uuid.UUID
	LastSeq      int64
	LastSenderID uuid.UUID
	LastAt       time.Time
	LastSealed   bool
	LastEvent    []byte
	Unread       int64
}

// ConversationCursor is a position in a conversation list: the entries
// after it are older (LastAt, ID) than it. The zero cursor starts at the
// newest.
type ConversationCursor struct {
	LastAt time.Time
	ID     uuid.UUID
}

// ListConversations returns up to limit of user's current conversations
// after cursor, newest activity first.
func ListConversations(ctx context.Context, q Querier, user uuid.UUID, cursor ConversationCursor, limit int) ([]ConversationSummary, error) {
	p := dbsqlc.ListConversationsParams{UserID: user, BeforeAt: cursor.LastAt, BeforeID: cursor.ID, MaxRows: int32(limit)}
	if cursor.LastAt.IsZero() {
		p.BeforeAt = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		p.BeforeID = uuid.Max
	}
	rows, err := dbsqlc.New(q).ListConversations(ctx, p)
	if err != nil {
		return nil, translate("listing conversations", err)
	}
	out := make([]ConversationSummary, len(rows))
	for i, r := range rows {
		out[i] = ConversationSummary{
			ID: r.ID, Kind: r.Kind, Title: deref(r.Title), Members: r.Members,
			LastID: r.LastID, LastSeq: r.LastSeq, LastSenderID: r.LastSenderID, LastAt: r.LastAt,
			LastSealed: r.LastSealed, LastEvent: r.LastEvent, Unread: r.Unread,
		}
	}
	return out, nil
}

// Visibility is a user's window on a conversation: the seqs they may see
// are those above HiddenThroughSeq, from JoinedSeq on, and up to
// *LeftSeq once they left a group.
type Visibility struct {
	Kind             string
	HiddenThroughSeq int64
	JoinedSeq        int64
	LeftSeq          *int64
}

// After returns the seq after which the user's view starts, given the
// seq after which they asked to read.
func (v Visibility) After(asked int64) int64 {
	return max(asked, v.HiddenThroughSeq, v.JoinedSeq-1)
}

// Covers reports whether the user may see seq.
func (v Visibility) Covers(seq int64) bool {
	return seq > v.HiddenThroughSeq && seq >= v.JoinedSeq && (v.LeftSeq == nil || seq <= *v.LeftSeq)
}

// MemberVisibility returns user's window on a conversation, or ErrNotFound
// when they never were its participant.
func MemberVisibility(ctx context.Context, q Querier, conversationID, user uuid.UUID) (Visibility, error) {
	r, err := dbsqlc.New(q).MemberVisibility(ctx, dbsqlc.MemberVisibilityParams{ConversationID: conversationID, UserID: user})
	if err != nil {
		return Visibility{}, translate("checking participant", err)
	}
	return Visibility{Kind: r.Kind, HiddenThroughSeq: r.HiddenThroughSeq, JoinedSeq: r.JoinedSeq, LeftSeq: r.LeftSeq}, nil
}

// GroupMessageRef locates a group message a member may see.
type GroupMessageRef struct {
	ConversationID uuid.UUID
	SenderID       uuid.UUID
	Seq            int64
}

// GroupMessageForMember returns group message id if user's window covers
// it, else ErrNotFound (also for a direct message).
func GroupMessageForMember(ctx context.Context, q Querier, id, user uuid.UUID) (GroupMessageRef, error) {
	r, err := dbsqlc.New(q).GroupMessageForMember(ctx, dbsqlc.GroupMessageForMemberParams{ID: id, UserID: user})
	if err != nil {
		return GroupMessageRef{}, translate("getting group message", err)
	}
	return GroupMessageRef{ConversationID: r.ConversationID, SenderID: r.SenderID, Seq: r.Seq}, nil
}

// AdvanceMemberCursor moves user's delivered cursor on a group (and read
// cursor, when read) forward to seq, never back, and reports whether
// either moved.
func AdvanceMemberCursor(ctx context.Context, q Querier, group, user uuid.UUID, seq int64, read bool) (bool, error) {
	r, err := dbsqlc.New(q).AdvanceMemberCursor(ctx, dbsqlc.AdvanceMemberCursorParams{
		ConversationID: group, UserID: user, Seq: seq, Read: read,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, translate("advancing receipt cursor", err)
	}
	return r.NewDelivered != r.OldDelivered || r.NewRead != r.OldRead, nil
}

// ReceiptCounts are a group message's receipts: of Members (those who
// could see it, apart from its sender), how many have it delivered and
// how many read.
type ReceiptCounts struct {
	Members, Delivered, Read int64
}

// GroupReceiptCounts counts the receipts of group message seq from sender.
func GroupReceiptCounts(ctx context.Context, q Querier, group, sender uuid.UUID, seq int64) (ReceiptCounts, error) {
	r, err := dbsqlc.New(q).GroupReceiptCounts(ctx, dbsqlc.GroupReceiptCountsParams{ConversationID: group, SenderID: sender, Seq: seq})
	if err != nil {
		return ReceiptCounts{}, translate("counting receipts", err)
	}
	return ReceiptCounts{Members: r.Members, Delivered: r.Delivered, Read: r.Read}, nil
}

// MemberReceipt is one member's receipt of a group message.
type MemberReceipt struct {
	UserID          uuid.UUID
	Delivered, Read bool
}

// GroupReceipts lists, per member who could see group message seq from
// sender (apart from the sender), whether they have it delivered and read.
func GroupReceipts(ctx context.Context, q Querier, group, sender uuid.UUID, seq int64) ([]MemberReceipt, error) {
	rows, err := dbsqlc.New(q).GroupReceipts(ctx, dbsqlc.GroupReceiptsParams{ConversationID: group, SenderID: sender, Seq: seq})
	if err != nil {
		return nil, translate("listing receipts", err)
	}
	out := make([]MemberReceipt, len(rows))
	for i, r := range rows {
		out[i] = MemberReceipt{UserID: r.UserID, Delivered: r.Delivered, Read: r.Read}
	}
	return out, nil
}

// GroupNotificationAudience returns up to limit of the members to notify
// of group message seq from sender (those whose window covers it, apart
// from the sender) after user id after, in user id order.
func GroupNotificationAudience(ctx context.Context, q Querier, group, sender uuid.UUID, seq int64, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	ids, err := dbsqlc.New(q).GroupNotificationAudience(ctx, dbsqlc.GroupNotificationAudienceParams{
		ConversationID: group, SenderID: sender, Seq: seq, AfterUser: after, MaxRows: int32(limit),
	})
	return ids, translate("listing members to notify", err)
}

// SetMuted mutes a conversation for user until until (nil unmutes);
// ErrNotFound when user is not a current participant.
func SetMuted(ctx context.Context, q Querier, conversation, user uuid.UUID, until *time.Time) error {
	n, err := dbsqlc.New(q).SetMuted(ctx, dbsqlc.SetMutedParams{ConversationID: conversation, UserID: user, MutedUntil: until})
	if err != nil {
		return translate("muting conversation", err)
	}
	if n == 0 {
		return fmt.Errorf("muting conversation: %w", ErrNotFound)
	}
	return nil
}

// MarkGroupDeleted marks a group every member left deleted: cleanup then
// removes its messages and the group.
func MarkGroupDeleted(ctx context.Context, q Querier, id uuid.UUID) error {
	return translate("marking group deleted", dbsqlc.New(q).MarkGroupDeleted(ctx, id))
}
