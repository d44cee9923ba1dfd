package delivery

import (
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// Frame returns the message frame of a stored message. A message stored
// encrypted gets a frame marked Encrypted without content: plaintext never
// travels through Redis, and the gateway holding the recipient decrypts it
// on the way to the socket. A deleted message's frame carries neither
// content nor attachments. A group's system message carries its event.
// A group message's frame has no recipient; the caller sets its Audience.
func Frame(m db.Message) fanout.MessageFrame {
	fr := fanout.MessageFrame{
		Type: fanout.FrameMessage, ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq,
		SenderID: m.SenderID, RecipientID: m.RecipientID, CreatedAt: m.CreatedAt,
	}
	if m.Event != nil {
		fr.Event = m.Event
		return fr
	}
	fr.Edited = m.EditedAt != nil
	if m.DeletedAt != nil {
		fr.Deleted = true
		return fr
	}
	if len(m.Attachments) > 0 {
		fr.Attachments = m.Attachments
	}
	if m.Content == nil {
		fr.Encrypted = true
		return fr
	}
	fr.Content = *m.Content
	return fr
}
