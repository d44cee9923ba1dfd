package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/groups"
	"github.com/msgrunner/msgrunner/validation"
)

// maxGroupBody bounds the body of a group route: member_ids at the
// largest cap a deployment may set, with room for the title.
const maxGroupBody = 64 << 10

// conversationView answers GET /v1/conversations/:id and POST
// /v1/conversations.
type conversationView struct {
	ID        uuid.UUID    `json:"id"`
	Kind      string       `json:"kind"`
	Title     string       `json:"title,omitempty"`
	CreatedAt *time.Time   `json:"created_at,omitempty"`
	LastSeq   int64        `json:"last_seq"`
	Role      string       `json:"role"`
	JoinedSeq int64        `json:"joined_seq"`
	LeftSeq   *int64       `json:"left_seq,omitempty"`
	Members   []memberView `json:"members,omitempty"`
}

type memberView struct {
	UserID    uuid.UUID `json:"user_id"`
	Role      string    `json:"role"`
	JoinedSeq int64     `json:"joined_seq"`
}

// changeView answers a group change.
type changeView struct {
	ConversationID uuid.UUID       `json:"conversation_id"`
	MessageID      uuid.UUID       `json:"message_id"`
	Seq            int64           `json:"seq"`
	Event          json.RawMessage `json:"event"`
}

func viewOf(v groups.View) conversationView {
	out := conversationView{
		ID: v.ID, Kind: db.KindGroup, Title: v.Title, CreatedAt: &v.CreatedAt, LastSeq: v.LastSeq,
		Role: v.Role, JoinedSeq: v.JoinedSeq, LeftSeq: v.LeftSeq,
	}
	for _, m := range v.Members {
		out.Members = append(out.Members, memberView{UserID: m.UserID, Role: m.Role, JoinedSeq: m.JoinedSeq})
	}
	return out
}

// groupError maps the groups package's refusals onto what clients see.
func groupError(err error) error {
	var fe *groups.FieldError
	field := ""
	if errors.As(err, &fe) {
		field = fe.Field
	}
	switch {
	case errors.Is(err, groups.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "id", Message: "no group with this id has you as a member"}
	case errors.Is(err, groups.ErrNotMember):
		return &apiError{Status: http.StatusForbidden, Code: "not_participant", Field: "id", Message: "you are not a member of this group"}
	case errors.Is(err, groups.ErrForbidden):
		return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "your role in this group does not allow this change"}
	case errors.Is(err, groups.ErrAlreadyMember):
		return &apiError{Status: http.StatusConflict, Code: "already_member", Field: field, Message: "this user is a member of the group already"}
	case errors.Is(err, groups.ErrNoSuchMember):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Field: field, Message: "this user is not a member of the group"}
	case errors.Is(err, groups.ErrLastOwner):
		return &apiError{Status: http.StatusConflict, Code: "last_owner", Field: field, Message: "the group would have no owner left; make another member an owner first"}
	}
	return err
}

// publishChange delivers a change's system message at once; the
// deliver-pending sweep delivers it if this fails.
func (s *Server) publishChange(ctx context.Context, ch groups.Change) changeView {
	s.afterCommit(ctx, ch.Message, ch.MembershipVersion)
	return changeView{ConversationID: ch.Message.ConversationID, MessageID: ch.Message.ID, Seq: ch.Message.Seq, Event: ch.Message.Event}
}

// afterCommit is the fast path of a stored message: publish it now, or
// leave it pending for the runner's deliver-pending sweep. It reports
// whether it was published.
func (s *Server) afterCommit(ctx context.Context, m db.Message, membershipVersion int64) bool {
	err := s.delivery.AfterCommit(ctx, m, membershipVersion)
	if errors.Is(err, delivery.ErrNotPublished) {
		s.logger.Warn("immediate delivery failed; the runner's deliver-pending sweep will deliver it",
			slog.String("message_id", m.ID.String()), slog.String("error", err.Error()))
		return false
	}
	if err != nil {
		// Published, but the mark was not written: the sweep publishes
		// it again, which clients absorb by id.
		s.logger.Warn("marking a published message sent failed; the deliver-pending sweep will publish it again",
			slog.String("message_id", m.ID.String()), slog.String("error", err.Error()))
	}
	return true
}

func (s *Server) createGroup(c echo.Context) error {
	var req struct {
		Title     string   `json:"title"`
		MemberIDs []string `json:"member_ids"`
	}
	if err := readJSON(c, maxGroupBody, &req); err != nil {
		return err
	}
	user := userOf(c)
	if err := groups.CheckTitle(req.Title); err != nil {
		return err
	}
	members, err := groups.ParseMembers("member_ids", user, req.MemberIDs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	v, ch, err := s.groups.Create(ctx, user, req.Title, members)
	if err != nil {
		return groupError(err)
	}
	s.publishChange(ctx, ch)
	return c.JSON(http.StatusCreated, viewOf(v))
}

func (s *Server) getConversation(c echo.Context) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	user := userOf(c)
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	vis, err := db.MemberVisibility(ctx, s.pool, id, user)
	if errors.Is(err, db.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "id", Message: "no conversation with this id has you as a participant"}
	}
	if err != nil {
		return err
	}
	if vis.Kind == db.KindGroup {
		v, err := s.groups.Get(ctx, user, id)
		if err != nil {
			return groupError(err)
		}
		return c.JSON(http.StatusOK, viewOf(v))
	}
	users, err := db.ListParticipants(ctx, s.pool, id)
	if err != nil {
		return err
	}
	out := conversationView{ID: id, Kind: db.KindDirect, Role: db.RoleMember}
	for _, u := range users {
		out.Members = append(out.Members, memberView{UserID: u, Role: db.RoleMember})
	}
	return c.JSON(http.StatusOK, out)
}

// conversationCursor encodes a position in the conversation list.
func conversationCursor(cur db.ConversationCursor) string {
	raw := cur.LastAt.UTC().Format(time.RFC3339Nano) + "|" + cur.ID.String()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseConversationCursor(v string) (db.ConversationCursor, error) {
	if v == "" {
		return db.ConversationCursor{}, nil
	}
	bad := validation.Errorf("cursor", "must be the next_cursor of an earlier page")
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return db.ConversationCursor{}, bad
	}
	at, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return db.ConversationCursor{}, bad
	}
	t, err1 := time.Parse(time.RFC3339Nano, at)
	u, err2 := uuid.Parse(id)
	if err1 != nil || err2 != nil {
		return db.ConversationCursor{}, bad
	}
	return db.ConversationCursor{LastAt: t, ID: u}, nil
}

func (s *Server) listConversations(c echo.Context) error {
	limit, err := queryInt(c, "limit", 50, 1, 200)
	if err != nil {
		return err
	}
	cur, err := parseConversationCursor(c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	rows, err := db.ListConversations(ctx, s.pool, userOf(c), cur, int(limit))
	if err != nil {
		return err
	}
	type lastView struct {
		ID        uuid.UUID       `json:"id"`
		Seq       int64           `json:"seq"`
		SenderID  uuid.UUID       `json:"sender_id"`
		CreatedAt time.Time       `json:"created_at"`
		Encrypted bool            `json:"encrypted,omitempty"`
		Event     json.RawMessage `json:"event,omitempty"`
	}
	type summary struct {
		ID      uuid.UUID `json:"id"`
		Kind    string    `json:"kind"`
		Title   string    `json:"title,omitempty"`
		Members int64     `json:"members"`
		Unread  int64     `json:"unread"`
		Last    lastView  `json:"last_message"`
	}
	out := make([]summary, len(rows))
	for i, r := range rows {
		out[i] = summary{ID: r.ID, Kind: r.Kind, Title: r.Title, Members: r.Members, Unread: r.Unread,
			Last: lastView{ID: r.LastID, Seq: r.LastSeq, SenderID: r.LastSenderID, CreatedAt: r.LastAt,
				Encrypted: r.LastSealed && r.LastEvent == nil, Event: r.LastEvent}}
	}
	res := map[string]any{"conversations": out}
	if len(rows) == int(limit) {
		last := rows[len(rows)-1]
		res["next_cursor"] = conversationCursor(db.ConversationCursor{LastAt: last.LastAt, ID: last.ID})
	}
	return c.JSON(http.StatusOK, res)
}

// groupChange runs one change of the group in the path and answers it
// with status.
func (s *Server) groupChange(c echo.Context, status int, do func(ctx context.Context, user, group uuid.UUID) (groups.Change, error)) error {
	group, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	ch, err := do(ctx, userOf(c), group)
	if err != nil {
		return groupError(err)
	}
	return c.JSON(status, s.publishChange(ctx, ch))
}

func (s *Server) renameGroup(c echo.Context) error {
	var req struct {
		Title string `json:"title"`
	}
	if err := readJSON(c, maxGroupBody, &req); err != nil {
		return err
	}
	if err := groups.CheckTitle(req.Title); err != nil {
		return err
	}
	return s.groupChange(c, http.StatusOK, func(ctx context.Context, user, group uuid.UUID) (groups.Change, error) {
		return s.groups.SetTitle(ctx, user, group, req.Title)
	})
}

func (s *Server) addMembers(c echo.Context) error {
	var req struct {
		MemberIDs []string `json:"member_ids"`
	}
	if err := readJSON(c, maxGroupBody, &req); err != nil {
		return err
	}
	users, err := groups.ParseMembers("member_ids", userOf(c), req.MemberIDs)
	if err != nil {
		return err
	}
	return s.groupChange(c, http.StatusCreated, func(ctx context.Context, user, group uuid.UUID) (groups.Change, error) {
		return s.groups.AddMembers(ctx, user, group, users)
	})
}

func (s *Server) removeMember(c echo.Context) error {
	member, err := parseID("user_id", c.Param("user_id"))
	if err != nil {
		return err
	}
	return s.groupChange(c, http.StatusOK, func(ctx context.Context, user, group uuid.UUID) (groups.Change, error) {
		return s.groups.RemoveMember(ctx, user, group, member)
	})
}

func (s *Server) setMemberRole(c echo.Context) error {
	member, err := parseID("user_id", c.Param("user_id"))
	if err != nil {
		return err
	}
	var req struct {
		Role string `json:"role"`
	}
	if err := readJSON(c, maxGroupBody, &req); err != nil {
		return err
	}
	if err := groups.CheckRole(req.Role); err != nil {
		return err
	}
	return s.groupChange(c, http.StatusOK, func(ctx context.Context, user, group uuid.UUID) (groups.Change, error) {
		return s.groups.SetRole(ctx, user, group, member, req.Role)
	})
}

// groupReceipts lists who has a group message delivered and read: for its
// sender and the group's owners only.
func (s *Server) groupReceipts(c echo.Context) error {
	group, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	msgID, err := parseID("message_id", c.Param("message_id"))
	if err != nil {
		return err
	}
	user := userOf(c)
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	notFound := &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "message_id", Message: "no message with this id in a group of yours"}
	m, err := db.GetMessage(ctx, s.pool, msgID)
	if errors.Is(err, db.ErrNotFound) || (err == nil && (m.ConversationID != group || !m.IsGroup() || m.Event != nil)) {
		return notFound
	}
	if err != nil {
		return err
	}
	if m.SenderID != user {
		g, err := s.groups.Get(ctx, user, group)
		if errors.Is(err, groups.ErrNotFound) {
			return notFound
		}
		if err != nil {
			return err
		}
		if g.LeftSeq != nil || g.Role != db.RoleOwner {
			return &apiError{Status: http.StatusForbidden, Code: "forbidden",
				Message: "only the message's sender and the group's owners see who read it"}
		}
	}
	rs, err := db.GroupReceipts(ctx, s.pool, group, m.SenderID, m.Seq)
	if err != nil {
		return err
	}
	type receipt struct {
		UserID    uuid.UUID `json:"user_id"`
		Delivered bool      `json:"delivered"`
		Read      bool      `json:"read"`
	}
	out := make([]receipt, len(rs))
	var delivered, read int
	for i, r := range rs {
		out[i] = receipt{UserID: r.UserID, Delivered: r.Delivered, Read: r.Read}
		if r.Delivered {
			delivered++
		}
		if r.Read {
			read++
		}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"message_id": m.ID, "members": len(rs), "delivered_count": delivered, "read_count": read, "receipts": out,
	})
}

// notGroupMember explains a refused group send.
func notGroupMember(conv uuid.UUID) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "not_participant", Field: "conversation_id",
		Message: fmt.Sprintf("%s is not a group you are a member of (a direct message needs recipient_id)", conv)}
}

// putConversationSettings sets the caller's settings of a conversation:
// muted_until (RFC 3339, or null to unmute) suppresses push, email and
// SMS notifications of its messages for them until then; in-app ones
// still arrive.
func (s *Server) putConversationSettings(c echo.Context) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	var req struct {
		MutedUntil *string `json:"muted_until"`
	}
	if err := readJSON(c, 4096, &req); err != nil {
		return err
	}
	var until *time.Time
	if req.MutedUntil != nil {
		t, err := time.Parse(time.RFC3339, *req.MutedUntil)
		if err != nil {
			return validation.Errorf("muted_until", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z, or null to unmute")
		}
		t = t.UTC()
		until = &t
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	if err := db.SetMuted(ctx, s.pool, id, userOf(c), until); errors.Is(err, db.ErrNotFound) {
		return notParticipant()
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"conversation_id": id, "muted_until": until})
}
