package gateway

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/httperr"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

const userKey = "user"

// authenticate resolves the bearer token to the user id. Browsers cannot
// set headers on websocket requests, so /v1/ws also takes ?token=.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := ""
		if h := c.Request().Header.Get("Authorization"); h != "" {
			scheme, rest, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return newError(http.StatusUnauthorized, "unauthorized", "Authorization header must be 'Bearer <token>'")
			}
			token = strings.TrimSpace(rest)
		} else if c.Path() == "/v1/ws" {
			token = c.QueryParam("token")
		}
		user, err := s.cfg.Auth.Verify(token)
		if err != nil {
			return err
		}
		c.Set(userKey, user)
		return next(c)
	}
}

func userOf(c echo.Context) uuid.UUID { return c.Get(userKey).(uuid.UUID) }

// sendRequest is the body of POST /v1/messages and the fields of a
// websocket "send" frame.
type sendRequest struct {
	// ID, optional, is the client's id for the message (a UUID). Sending
	// again with the same id returns the message already stored instead of
	// a duplicate, so a client may retry safely after a timeout.
	ID                 string `json:"id"`
	ConversationID     string `json:"conversation_id"`
	RecipientID        string `json:"recipient_id"`
	Content            string `json:"content"`
	RequiresEncryption bool   `json:"requires_encryption"`
	Priority           string `json:"priority"`
	// SendAt (RFC 3339) or DelayMS schedules the message instead of sending
	// it now; DelayMS 0 sends it now.
	SendAt  string `json:"send_at"`
	DelayMS *int64 `json:"delay_ms"`
	// AttachmentIDs are uploads of the sender's to carry with the message
	// (POST /v1/attachments), at most outbox.MaxAttachments.
	AttachmentIDs []string `json:"attachment_ids"`
}

// attachments parses AttachmentIDs.
func (r sendRequest) attachments() ([]uuid.UUID, error) {
	if len(r.AttachmentIDs) > outbox.MaxAttachments {
		return nil, validation.Errorf("attachment_ids", "has %d attachments, over the limit of %d", len(r.AttachmentIDs), outbox.MaxAttachments)
	}
	ids := make([]uuid.UUID, len(r.AttachmentIDs))
	for i, v := range r.AttachmentIDs {
		id, err := uuid.Parse(v)
		if err != nil || id == uuid.Nil {
			return nil, validation.Errorf("attachment_ids", "must be attachment ids (UUIDs)")
		}
		ids[i] = id
	}
	return ids, nil
}

// scheduledResponse answers a scheduled send.
type scheduledResponse struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	RecipientID    uuid.UUID `json:"recipient_id"`
	Content        string    `json:"content,omitempty"`
	// Encrypted marks a message held sealed; its content, in the list,
	// is opened for its sender.
	Encrypted bool      `json:"encrypted,omitempty"`
	Priority  string    `json:"priority,omitempty"`
	Status    string    `json:"status"`
	SendAt    time.Time `json:"send_at"`
}

// target parses the conversation and recipient ids. A direct message's
// conversation id must be the sender's and the recipient's
// (DirectConversationID, as GET /v1/dm/:peer gives it): nobody can
// create, and so take over, the conversation of two other users. A
// message to a group has no recipient (recipient is uuid.Nil); the
// outbox checks that the sender is a current member.
func (req sendRequest) target(sender uuid.UUID) (conv, recipient uuid.UUID, err error) {
	if conv, err = parseID("conversation_id", req.ConversationID); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	if req.RecipientID == "" {
		return conv, uuid.Nil, nil
	}
	if recipient, err = parseID("recipient_id", req.RecipientID); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	if recipient != sender && conv != DirectConversationID(sender, recipient) {
		return uuid.Nil, uuid.Nil, &apiError{Status: http.StatusForbidden, Code: "not_participant", Field: "conversation_id",
			Message: "this is not the conversation of you and the recipient (GET /v1/dm/:peer gives it)"}
	}
	return conv, recipient, nil
}

// sendAt returns when req asks to be sent, and whether it is scheduled.
func (req sendRequest) sendAt(now time.Time) (time.Time, bool, error) {
	switch {
	case req.SendAt != "" && req.DelayMS != nil:
		return time.Time{}, false, validation.Errorf("send_at", "give send_at or delay_ms, not both")
	case req.SendAt != "":
		t, err := time.Parse(time.RFC3339, req.SendAt)
		if err != nil {
			return time.Time{}, false, validation.Errorf("send_at", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		return t, true, nil
	case req.DelayMS != nil && *req.DelayMS == 0:
		return time.Time{}, false, nil // "send now", as the earlier design's clients send it
	case req.DelayMS != nil:
		if *req.DelayMS < 0 || *req.DelayMS > outbox.MaxScheduleAhead.Milliseconds() {
			return time.Time{}, false, validation.Errorf("delay_ms", "must be 0 (send now) or between 1 and %d", outbox.MaxScheduleAhead.Milliseconds())
		}
		return now.Add(time.Duration(*req.DelayMS) * time.Millisecond), true, nil
	}
	return time.Time{}, false, nil
}

// sendResponse answers a successful send.
type sendResponse struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	Status         string    `json:"status"`
}

func parseID(field, v string) (uuid.UUID, error) {
	if v == "" {
		return uuid.Nil, validation.Errorf(field, "is required")
	}
	id, err := uuid.Parse(v)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, validation.Errorf(field, "must be a UUID")
	}
	return id, nil
}

// decodeStrict is httperr.DecodeJSON: exactly one JSON object in valid
// UTF-8 with only known fields, its errors naming the problem.
func decodeStrict(raw []byte, v any) error { return httperr.DecodeJSON(raw, v) }

// send stores a message from user and delivers it at once; the
// runner's deliver-pending sweep is the backstop if that fails.
func (s *Server) send(ctx context.Context, user uuid.UUID, req sendRequest) (sendResponse, error) {
	start := time.Now()
	conv, recipient, err := req.target(user)
	if err != nil {
		return sendResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	msg := outbox.Message{
		ConversationID: conv, SenderID: user, RecipientID: recipient,
		Content: req.Content, Priority: req.Priority, CallerPublishes: true, Encrypt: req.RequiresEncryption,
	}
	if msg.AttachmentIDs, err = req.attachments(); err != nil {
		return sendResponse{}, err
	}
	if req.ID != "" {
		if msg.ID, err = parseID("id", req.ID); err != nil {
			return sendResponse{}, err
		}
	}
	res, err := s.outbox.Send(ctx, s.pool, msg)
	if errors.Is(err, db.ErrConflict) && req.ID != "" {
		return s.replay(ctx, user, conv, msg.ID)
	}
	if errors.Is(err, outbox.ErrNotParticipant) && recipient == uuid.Nil {
		return sendResponse{}, notGroupMember(conv)
	}
	if err != nil {
		return sendResponse{}, err
	}
	out := sendResponse{ID: res.ID, ConversationID: res.ConversationID, Seq: res.Seq, Status: res.Status}

	// Fast path: publish now; the deliver-pending sweep delivers it later
	// only if this fails.
	stored := db.Message{
		ID: res.ID, ConversationID: res.ConversationID, SenderID: user, RecipientID: recipient,
		Seq: res.Seq, Status: db.MessagePending, CreatedAt: res.CreatedAt, Attachments: res.Attachments,
	}
	if !res.Encrypted {
		stored.Content = &msg.Content // a sealed message's frame carries no content
	}
	if s.afterCommit(ctx, stored, res.MembershipVersion) {
		out.Status = string(db.MessageSent)
		s.metrics.postToPublish.Observe(time.Since(start).Seconds())
	}
	s.metrics.messages.WithLabelValues(out.Status).Inc()
	return out, nil
}

func (s *Server) postMessage(c echo.Context) error {
	var req sendRequest
	if err := readJSON(c, int64(s.cfg.MaxContentBytes)*2+4096, &req); err != nil {
		return err
	}
	if at, scheduled, err := req.sendAt(time.Now()); err != nil {
		return err
	} else if scheduled {
		res, err := s.schedule(c.Request().Context(), userOf(c), req, at)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, res)
	}
	res, err := s.send(c.Request().Context(), userOf(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, res)
}

// replay answers a retried send whose message id is already stored: the
// stored message, if it is the caller's in that conversation.
func (s *Server) replay(ctx context.Context, user, conv, id uuid.UUID) (sendResponse, error) {
	m, err := db.GetMessage(ctx, s.pool, id)
	if err != nil {
		return sendResponse{}, err
	}
	if m.SenderID != user || m.ConversationID != conv {
		return sendResponse{}, &apiError{Status: http.StatusConflict, Code: "id_taken", Field: "id", Message: "this message id is already used by another message"}
	}
	return sendResponse{ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, Status: string(m.Status)}, nil
}

// reveal fills an encrypted message frame's content for its recipient, or
// says why it cannot be read (the key destroyed, tampering). Its database
// reads are bounded by DBTimeout whatever ctx allows, so a slow database
// never holds a socket's resume or live stream longer than that.
func (s *Server) reveal(ctx context.Context, op *keyring.Opener, fr *fanout.MessageFrame, m *db.Message) {
	if !fr.Encrypted || s.cfg.Sealer == nil {
		return
	}
	if op == nil {
		op = s.cfg.Sealer.NewOpener()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	if m == nil {
		got, err := db.GetMessage(ctx, s.pool, fr.ID)
		if err != nil {
			fr.Unreadable = "message not found"
			return
		}
		m = &got
	}
	plain, err := op.Open(ctx, s.pool, *m)
	switch {
	case errors.Is(err, keyring.ErrShredded):
		fr.Unreadable = "the conversation's key was destroyed"
	case errors.Is(err, keyring.ErrOpen), errors.Is(err, keyring.ErrUnknownKey):
		fr.Unreadable = "the message cannot be decrypted (wrong key or tampered)"
	case err != nil:
		fr.Unreadable = "the message cannot be decrypted right now"
		s.logger.Warn("decrypting a message", slog.String("message_id", fr.ID.String()), slog.String("error", err.Error()))
	default:
		fr.Content = plain
	}
}

// opener returns a key cache for one request's encrypted messages (nil
// without keys).
func (s *Server) opener() *keyring.Opener {
	if s.cfg.Sealer == nil {
		return nil
	}
	return s.cfg.Sealer.NewOpener()
}

// schedule holds a message from user until at (its send_at or delay_ms).
// Like send, a client-chosen id makes it idempotent: a retry is answered
// from the stored scheduled message.
func (s *Server) schedule(ctx context.Context, user uuid.UUID, req sendRequest, at time.Time) (scheduledResponse, error) {
	conv, recipient, err := req.target(user)
	if err != nil {
		return scheduledResponse{}, err
	}
	if recipient == uuid.Nil {
		return scheduledResponse{}, validation.Errorf("recipient_id",
			"is required to schedule a message: scheduling a message to a group is not supported yet")
	}
	if len(req.AttachmentIDs) > 0 {
		return scheduledResponse{}, validation.Errorf("attachment_ids", "cannot be scheduled yet: send the message now, or without attachments")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	msg := outbox.Message{
		ConversationID: conv, SenderID: user, RecipientID: recipient, Content: req.Content, Priority: req.Priority,
		Encrypt: req.RequiresEncryption,
	}
	if req.ID != "" {
		if msg.ID, err = parseID("id", req.ID); err != nil {
			return scheduledResponse{}, err
		}
	}
	sc, err := s.outbox.Schedule(ctx, s.pool, msg, at)
	if errors.Is(err, db.ErrConflict) && req.ID != "" {
		return s.replaySchedule(ctx, user, conv, msg.ID)
	}
	if err != nil {
		return scheduledResponse{}, err
	}
	s.metrics.messages.WithLabelValues("scheduled").Inc()
	return scheduledResponse{ID: sc.ID, ConversationID: sc.ConversationID, RecipientID: sc.RecipientID,
		Encrypted: sc.Ciphertext != nil, Status: "scheduled", SendAt: sc.SendAt, Priority: sc.Priority}, nil
}

// replaySchedule answers a retried schedule whose id is already stored: the
// stored scheduled message, if it is the caller's in that conversation,
// with its status now ("scheduled" while it is still held).
func (s *Server) replaySchedule(ctx context.Context, user, conv, id uuid.UUID) (scheduledResponse, error) {
	sc, err := s.outbox.GetScheduled(ctx, s.pool, user, id)
	if errors.Is(err, outbox.ErrScheduledNotFound) || (err == nil && sc.ConversationID != conv) {
		return scheduledResponse{}, &apiError{Status: http.StatusConflict, Code: "id_taken", Field: "id", Message: "this message id is already used by another message"}
	}
	if err != nil {
		return scheduledResponse{}, err
	}
	status := sc.Status
	if status == "pending" {
		status = "scheduled"
	}
	return scheduledResponse{ID: sc.ID, ConversationID: sc.ConversationID, RecipientID: sc.RecipientID,
		Encrypted: sc.Ciphertext != nil, Status: status, SendAt: sc.SendAt, Priority: sc.Priority}, nil
}

func (s *Server) listScheduled(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	list, err := s.outbox.ListScheduled(ctx, s.pool, userOf(c), MaxHistoryLimit)
	if err != nil {
		return err
	}
	out := make([]scheduledResponse, len(list))
	op := s.opener()
	for i, sc := range list {
		out[i] = scheduledResponse{ID: sc.ID, ConversationID: sc.ConversationID, RecipientID: sc.RecipientID,
			Content: sc.Content, Encrypted: sc.Ciphertext != nil, Priority: sc.Priority, Status: "scheduled", SendAt: sc.SendAt}
		if sc.Ciphertext != nil && op != nil {
			// Open a held sealed message for its sender, as it will be
			// opened once sent; one that cannot be opened shows no content.
			key := sc.KeyID
			if text, err := op.Open(ctx, s.pool, db.Message{ID: sc.ID, ConversationID: sc.ConversationID, Ciphertext: sc.Ciphertext, KeyID: &key}); err == nil {
				out[i].Content = text
			}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"scheduled": out})
}

func (s *Server) cancelScheduled(c echo.Context) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	if err := s.outbox.CancelScheduled(ctx, s.pool, userOf(c), id); err != nil {
		if errors.Is(err, outbox.ErrScheduledNotFound) {
			return newError(http.StatusNotFound, "not_found", "no pending scheduled message of yours has this id (already sent or cancelled?)")
		}
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// readJSON reads a JSON request body of at most limit bytes into v with
// decodeStrict. A declared Content-Type other than application/json
// answers 415 (a missing one is taken as JSON), a longer body 413.
func readJSON(c echo.Context, limit int64, v any) error {
	if err := httperr.CheckContentType(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	if err != nil {
		return bodyError(err, limit)
	}
	return decodeStrict(raw, v)
}

// bodyError tells an over-long body (413) from one that could not be read.
func bodyError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is over %d bytes", limit))
	}
	return newError(http.StatusBadRequest, "bad_body", "could not read the request body")
}

func queryInt(c echo.Context, name string, def, lo, hi int64) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, validation.Errorf(name, "must be an integer between %d and %d", lo, hi)
	}
	return n, nil
}

// MaxHistoryLimit caps GET /v1/conversations/:id/messages?limit=.
const MaxHistoryLimit = 200

func (s *Server) history(c echo.Context) error {
	conv, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	after, err := queryInt(c, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 50, 1, MaxHistoryLimit)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	vis, err := db.MemberVisibility(ctx, s.pool, conv, userOf(c))
	if errors.Is(err, db.ErrNotFound) {
		return notParticipant()
	}
	if err != nil {
		return err
	}
	// What the caller deleted on their side stays hidden from them, and
	// a group shows its messages from the one that added them.
	after = vis.After(after)
	if vis.LeftSeq != nil && after >= *vis.LeftSeq {
		return c.JSON(http.StatusOK, map[string]any{"messages": []fanout.MessageFrame{}, "next_after": after, "cached": false})
	}
	frames, version, hit := s.fanout.Recent(ctx, conv, after, int(limit))
	if hit && slices.ContainsFunc(frames, func(f fanout.MessageFrame) bool { return f.Encrypted }) {
		// Cached encrypted frames carry no content: one page read from
		// Postgres beats a read per message.
		hit = false
	}
	if !hit {
		msgs, err := s.historyPage(ctx, conv, after, int(limit))
		if err != nil {
			return err
		}
		frames = make([]fanout.MessageFrame, len(msgs))
		for i, m := range msgs {
			frames[i] = delivery.Frame(m)
		}
		// Only a page that reaches the conversation's end may seed the
		// cache, which must always hold its newest messages. Encrypted
		// frames are filled in after, and never cached.
		if len(msgs) < int(limit) && version != "" {
			if err := s.fanout.FillRecent(ctx, conv, version, frames); err != nil {
				s.logger.Debug("filling recent cache", slog.String("error", err.Error()))
			}
		}
		op := s.opener()
		for i := range frames {
			s.reveal(ctx, op, &frames[i], &msgs[i])
		}
	}
	if vis.LeftSeq != nil {
		// A former member sees nothing after the message that removed
		// them.
		frames = slices.DeleteFunc(frames, func(f fanout.MessageFrame) bool { return f.Seq > *vis.LeftSeq })
	}
	next := after
	if len(frames) > 0 {
		next = frames[len(frames)-1].Seq
	}
	return c.JSON(http.StatusOK, map[string]any{"messages": frames, "next_after": next, "cached": hit})
}

// historyPage reads up to limit messages of conv after seq after. With a
// read replica in use it reads there first and keeps a full page: seqs
// are given in commit order within a conversation and the standby
// replays commits in order, so it holds a prefix of every conversation,
// and a full page from it misses nothing. It may show an edit, a delete or
// a cleanup up to DATABASE_READ_MAX_LAG late. A short page may lack
// messages the standby has not replayed yet, so it is read again on the
// primary; only such pages seed the recent cache.
func (s *Server) historyPage(ctx context.Context, conv uuid.UUID, after int64, limit int) ([]db.Message, error) {
	if s.cfg.Replica != nil {
		if standby, ok := s.cfg.Replica.Standby(); ok {
			msgs, err := db.ListConversationMessages(ctx, standby, conv, after, limit)
			if err == nil && len(msgs) == limit {
				return msgs, nil
			}
		}
	}
	return db.ListConversationMessages(ctx, s.pool, conv, after, limit)
}

func (s *Server) unread(c echo.Context) error {
	user := userOf(c)
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	counts, err := s.fanout.Unread(ctx, user, func(ctx context.Context) (map[uuid.UUID]int64, error) {
		return db.UnreadCounts(ctx, s.pool, user)
	})
	if err != nil {
		return err
	}
	var total int64
	for _, n := range counts {
		total += n
	}
	return c.JSON(http.StatusOK, map[string]any{"conversations": counts, "total": total})
}

// DirectConversationID returns the conversation id two users share for
// direct messages (see outbox.DirectConversationID).
func DirectConversationID(a, b uuid.UUID) uuid.UUID { return outbox.DirectConversationID(a, b) }

func (s *Server) directConversation(c echo.Context) error {
	peer, err := parseID("peer", c.Param("peer"))
	if err != nil {
		return err
	}
	if peer == userOf(c) {
		return validation.Errorf("peer", "must differ from your own user id")
	}
	return c.JSON(http.StatusOK, map[string]any{"conversation_id": DirectConversationID(userOf(c), peer)})
}

//go:embed demo/index.html
var demoHTML []byte

func (s *Server) demoPage(c echo.Context) error {
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", demoHTML)
}
