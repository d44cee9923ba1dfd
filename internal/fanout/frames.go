package fanout

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Frame types sent by the server.
const (
	FrameMessage = "message"
	FrameReceipt = "receipt"
)

// MessageFrame carries one message to its recipient, or to the members of
// its group.
type MessageFrame struct {
	Type           string    `json:"type"` // "message"
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	SenderID       uuid.UUID `json:"sender_id"`
	// RecipientID is the recipient of a direct message; a group
	// message's frame leaves it out.
	RecipientID uuid.UUID `json:"recipient_id,omitzero"`
	Content     string    `json:"content"`
	// Event is a group's system message (a membership or title change:
	// {"type": ..., ...}); such a frame has no content.
	Event json.RawMessage `json:"event,omitempty"`
	// Audience is who a group message's frame is published to (its
	// members at its seq, apart from the sender); never encoded.
	Audience []uuid.UUID `json:"-"`
	// Attachments are the attachments the message carries ({id,
	// content_type, size} each; the recipient fetches them with GET
	// /v1/attachments/:id); left out when there are none, or when the
	// message was deleted.
	Attachments json.RawMessage `json:"attachments,omitempty"`
	// Encrypted marks a message stored encrypted; its content is left out.
	Encrypted bool      `json:"encrypted,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Status is the stored delivery state, set on frames read from
	// Postgres (resume); live frames leave it out.
	Status string `json:"status,omitempty"`
	// Edited and Deleted mark a message its sender edited or deleted (a
	// deleted message's content is left out).
	Edited  bool `json:"edited,omitempty"`
	Deleted bool `json:"deleted,omitempty"`
	// Unreadable says why an encrypted message's content could not be
	// decrypted for the reader (set by the gateway, never published).
	Unreadable string `json:"unreadable,omitempty"`
}

// FrameNotification is the in-app notification frame type.
const FrameNotification = "notification"

// NotificationFrame is an in-app notification.
type NotificationFrame struct {
	Type      string    `json:"type"` // "notification"
	ID        uuid.UUID `json:"id"`
	MessageID uuid.UUID `json:"message_id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// ReceiptFrame tells a sender that its message was delivered or read.
type ReceiptFrame struct {
	Type           string    `json:"type"` // "receipt"
	MessageID      uuid.UUID `json:"message_id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Status         string    `json:"status"` // "delivered" or "read"
	At             time.Time `json:"at"`
	// Group receipts count instead: of Members (those who could see the
	// message, apart from its sender), how many have it delivered and
	// read. Left out for direct messages.
	Members        *int64 `json:"members,omitempty"`
	DeliveredCount *int64 `json:"delivered_count,omitempty"`
	ReadCount      *int64 `json:"read_count,omitempty"`
}
