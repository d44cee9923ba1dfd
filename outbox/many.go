package outbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/validation"
)

// ErrDuplicateConversation is returned by SendManyTx when two messages
// share a conversation.
var ErrDuplicateConversation = db.ErrDuplicateConversation

// SendManyTx is SendTx for many plaintext messages in distinct
// conversations, for bulk writers such as broadcasts: the messages go in
// with two statements and their jobs with one COPY (InsertManyFastTx), so
// the Results carry no job ids. Invalid input is a *validation.Error whose
// field names the message ("messages[3].content") before anything is
// written. ErrNotParticipant or ErrEncryptedConversation (any one
// message) leaves tx to be rolled back.
func (o *Outbox) SendManyTx(ctx context.Context, tx pgx.Tx, ms []Message) ([]*Result, error) {
	rows := make([]db.NewMessage, len(ms))
	vs := make([]validated, len(ms))
	for i, m := range ms {
		v, err := o.validate(m)
		var ve *validation.Error
		if errors.As(err, &ve) {
			return nil, validation.Errorf(fmt.Sprintf("messages[%d].%s", i, ve.Field), "%s", ve.Problem)
		}
		if err != nil {
			return nil, err
		}
		if v.row.RecipientID == uuid.Nil {
			return nil, validation.Errorf(fmt.Sprintf("messages[%d].recipient_id", i), "is required: bulk sends take direct messages only")
		}
		if v.row.Content == nil {
			return nil, validation.Errorf(fmt.Sprintf("messages[%d].ciphertext", i), "bulk sends take plaintext messages only")
		}
		if len(v.attachmentIDs) > 0 {
			return nil, validation.Errorf(fmt.Sprintf("messages[%d].attachment_ids", i), "bulk sends take no attachments")
		}
		rows[i], vs[i] = v.row, v
	}
	ins, err := db.InsertMessages(ctx, tx, rows)
	if err != nil {
		return nil, insertError(err)
	}
	params := make([]river.InsertManyParams, 0, 3*len(ms))
	out := make([]*Result, len(ms))
	for i, m := range ins {
		params = vs[i].followUps(m.ID, params)
		out[i] = &Result{ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, Status: string(m.Status), CreatedAt: m.CreatedAt}
	}
	if _, err := o.river.InsertManyFastTx(ctx, tx, params); err != nil {
		return nil, fmt.Errorf("outbox: inserting jobs: %w", err)
	}
	return out, nil
}
