package outbox

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// EncryptConversationTx switches a conversation to encrypted and enqueues
// the encrypt-decrypt job that seals its plaintext history, in tx: both
// commit or neither does. From the commit on, plaintext sends to the
// conversation fail with ErrEncryptedConversation (Send, given a
// Config.Sealer, then seals them), so the job's walk over the history cannot be overtaken by new
// plaintext. Switching an encrypted conversation again only enqueues
// another job, which finds nothing left to seal. It returns the job id;
// db.ErrNotFound for an unknown or deleted conversation.
//
// Only operators may call it (the admin CLI and API); it never sees
// message content.
func (o *Outbox) EncryptConversationTx(ctx context.Context, tx pgx.Tx, conversation uuid.UUID) (int64, error) {
	if err := db.SwitchConversationToEncrypted(ctx, tx, conversation); err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	res, err := o.river.InsertTx(ctx, tx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpEncrypt, ConversationID: conversation}, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: inserting encrypt job: %w", err)
	}
	return res.Job.ID, nil
}
