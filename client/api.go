package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Message is a message received, live or resumed (docs/api.md, "message"
// frames), or read from history.
type Message struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	SenderID       uuid.UUID `json:"sender_id"`
	// RecipientID is zero for a message to a group.
	RecipientID uuid.UUID `json:"recipient_id,omitzero"`
	Content     string    `json:"content"`
	CreatedAt   time.Time `json:"created_at"`
	// Event is set on a group's system message (a membership or title
	// change: {"type": ..., "user_ids": [...], ...}), which has no content.
	Event       json.RawMessage `json:"event,omitempty"`
	Attachments []Attachment    `json:"attachments,omitempty"`
	Encrypted   bool            `json:"encrypted,omitempty"`
	Edited      bool            `json:"edited,omitempty"`
	Deleted     bool            `json:"deleted,omitempty"`
	Unreadable  string          `json:"unreadable,omitempty"`
	// Status is the stored delivery state; set on resumed and history
	// messages, empty on live ones.
	Status string `json:"status,omitempty"`
	// Raw is the frame as received, for fields this type does not name.
	Raw json.RawMessage `json:"-"`
}

// Attachment is an attachment a message carries.
type Attachment struct {
	ID          uuid.UUID `json:"id"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
}

// Receipt says one of the user's messages was delivered or read.
type Receipt struct {
	MessageID      uuid.UUID `json:"message_id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Status         string    `json:"status"`
	At             time.Time `json:"at"`
	// A group message's receipt counts: of Members (who could see it,
	// apart from its sender), how many have it delivered and read. Zero
	// for a direct message.
	Members        int64 `json:"members,omitempty"`
	DeliveredCount int64 `json:"delivered_count,omitempty"`
	ReadCount      int64 `json:"read_count,omitempty"`
}

// Notification is an in-app notification.
type Notification struct {
	ID        uuid.UUID `json:"id"`
	MessageID uuid.UUID `json:"message_id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// State is the websocket's state, as OnState is told it.
type State struct {
	// Connected is true once a gateway said ready, false when the
	// connection dropped or could not be made.
	Connected bool
	// Endpoint is the gateway concerned.
	Endpoint string
	// Err is why the connection dropped or failed; nil on connect.
	Err error
}

// Outgoing is a message to send. The sender is the token's user.
type Outgoing struct {
	// ID is the message id; the client gives it a UUIDv7 when zero. Every
	// retry of one Send carries the same id.
	ID uuid.UUID `json:"id"`
	// ConversationID is the conversation; DirectConversation gives the one
	// with a peer. Zero asks Send to look it up from RecipientID.
	ConversationID uuid.UUID `json:"conversation_id"`
	// RecipientID is the peer of a direct message; zero for a message to
	// a group (ConversationID the group's).
	RecipientID uuid.UUID `json:"recipient_id,omitzero"`
	Content     string    `json:"content"`
	// Priority is critical, high, normal or low; normal when empty.
	Priority           string      `json:"priority,omitempty"`
	RequiresEncryption bool        `json:"requires_encryption,omitempty"`
	AttachmentIDs      []uuid.UUID `json:"attachment_ids,omitempty"`
	// SendAt holds the message until then (a scheduled message).
	SendAt time.Time `json:"-"`
}

// Sent is the gateway's answer to a send.
type Sent struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	// Seq is the message's place in its conversation (0 for a scheduled
	// message, which gets one when it is released).
	Seq int64 `json:"seq"`
	// Status is sent, pending (the runner delivers it), or scheduled.
	Status string    `json:"status"`
	SendAt time.Time `json:"send_at,omitzero"`
}

// Send stores m through POST /v1/messages and returns the gateway's
// answer. It gives m an id first and sends every retry with it, so a retry
// after an answer lost in flight returns the stored message instead of
// storing another. It retries network errors, timeouts and 5xx answers
// (other than 501) with backoff, across endpoints, until ctx ends; a 4xx
// is returned at once as an *APIError and never retried.
func (c *Client) Send(ctx context.Context, m Outgoing) (*Sent, error) {
	if m.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("client: making a message id: %w", err)
		}
		m.ID = id
	}
	if m.ConversationID == uuid.Nil && m.RecipientID != uuid.Nil {
		conv, err := c.DirectConversation(ctx, m.RecipientID)
		if err != nil {
			return nil, err
		}
		m.ConversationID = conv
	}
	body := struct {
		Outgoing
		SendAt string `json:"send_at,omitempty"`
	}{Outgoing: m}
	if !m.SendAt.IsZero() {
		body.SendAt = m.SendAt.UTC().Format(time.RFC3339)
	}
	var out Sent
	if err := c.do(ctx, http.MethodPost, "/v1/messages", nil, body, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// DirectConversation returns the conversation of the user and peer
// (GET /v1/dm/:peer).
func (c *Client) DirectConversation(ctx context.Context, peer uuid.UUID) (uuid.UUID, error) {
	var out struct {
		ConversationID uuid.UUID `json:"conversation_id"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/dm/"+peer.String(), nil, nil, &out, true); err != nil {
		return uuid.Nil, err
	}
	return out.ConversationID, nil
}

// Group is a group conversation as its member sees it.
type Group struct {
	ID        uuid.UUID `json:"id"`
	Title     string    `json:"title"`
	Role      string    `json:"role"`
	LastSeq   int64     `json:"last_seq"`
	JoinedSeq int64     `json:"joined_seq"`
	// LeftSeq is set once the user left or was removed.
	LeftSeq *int64        `json:"left_seq,omitempty"`
	Members []GroupMember `json:"members,omitempty"`
}

// GroupMember is a member of a group.
type GroupMember struct {
	UserID    uuid.UUID `json:"user_id"`
	Role      string    `json:"role"`
	JoinedSeq int64     `json:"joined_seq"`
}

// CreateGroup creates a group titled title with members (not the user,
// who becomes its owner) through POST /v1/conversations. It is not
// retried: a retry after an answer lost in flight would create a second
// group.
func (c *Client) CreateGroup(ctx context.Context, title string, members []uuid.UUID) (*Group, error) {
	var out Group
	body := map[string]any{"title": title, "member_ids": members}
	if err := c.do(ctx, http.MethodPost, "/v1/conversations", nil, body, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// Group returns a group with its members (GET /v1/conversations/:id).
func (c *Client) Group(ctx context.Context, id uuid.UUID) (*Group, error) {
	var out Group
	if err := c.do(ctx, http.MethodGet, "/v1/conversations/"+id.String(), nil, nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// History returns up to limit messages of a conversation after seq after,
// in seq order, and the after of the next page (GET
// /v1/conversations/:id/messages). limit 0 takes the gateway's default.
func (c *Client) History(ctx context.Context, conv uuid.UUID, after int64, limit int) ([]Message, int64, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Messages  []Message `json:"messages"`
		NextAfter int64     `json:"next_after"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/conversations/"+conv.String()+"/messages", q, nil, &out, true); err != nil {
		return nil, 0, err
	}
	return out.Messages, out.NextAfter, nil
}

// Unread returns the user's unread messages per conversation and in all
// (GET /v1/unread).
func (c *Client) Unread(ctx context.Context) (map[uuid.UUID]int64, int64, error) {
	var out struct {
		Conversations map[uuid.UUID]int64 `json:"conversations"`
		Total         int64               `json:"total"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/unread", nil, nil, &out, true); err != nil {
		return nil, 0, err
	}
	return out.Conversations, out.Total, nil
}

// SearchResult is one match of Search.
type SearchResult struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	SenderID       uuid.UUID `json:"sender_id"`
	CreatedAt      time.Time `json:"created_at"`
	// Snippet is HTML: the content escaped, matches in <mark>.
	Snippet string  `json:"snippet"`
	Rank    float64 `json:"rank"`
}

// Search runs a full-text search over the user's conversations (GET
// /v1/search); conv narrows it to one when not zero, cursor continues a
// previous page. It returns the results and the next page's cursor ("" at
// the end).
func (c *Client) Search(ctx context.Context, query string, conv uuid.UUID, limit int, cursor string) ([]SearchResult, string, error) {
	q := url.Values{"q": {query}}
	if conv != uuid.Nil {
		q.Set("conversation_id", conv.String())
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out struct {
		Results    []SearchResult `json:"results"`
		NextCursor string         `json:"next_cursor"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/search", q, nil, &out, true); err != nil {
		return nil, "", err
	}
	return out.Results, out.NextCursor, nil
}
