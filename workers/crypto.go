package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/jobs"
)

// EncryptDecryptWorker does bulk cryptographic work on one conversation.
// `rotate` re-wraps the conversation's data key under the active
// key-encryption key (messages stay readable: the data key is unchanged).
// `encrypt` (sealing plaintext history) and `decrypt` (an authorised
// export) are not built yet and cancel with that reason.
type EncryptDecryptWorker struct {
	Policy[jobs.EncryptDecryptArgs]
	deps Deps
}

// Work implements river.Worker.
func (w *EncryptDecryptWorker) Work(ctx context.Context, job *river.Job[jobs.EncryptDecryptArgs]) error {
	a := job.Args
	if a.Operation != jobs.CryptoOpRotate {
		return notImplemented(jobs.KindEncryptDecrypt, "the encryption keyring's "+a.Operation+" operation (only rotate is built)")
	}
	if w.deps.Sealer == nil {
		return river.JobCancel(errors.New("encrypt-decrypt: this runner has no encryption keys (ENCRYPTION_KEYS)"))
	}
	if a.ReencryptContent {
		return notImplemented(jobs.KindEncryptDecrypt, "re-encrypting content under a new data key (rotate re-wraps the key only)")
	}
	changed, err := w.deps.Sealer.Rotate(ctx, w.deps.Pool, a.ConversationID)
	if errors.Is(err, keyring.ErrUnknownKey) || errors.Is(err, keyring.ErrOpen) {
		return river.JobCancel(fmt.Errorf("rotating conversation %s: %w", a.ConversationID, err))
	}
	if err != nil {
		return err
	}
	w.deps.Logger.Info("conversation key rotated", slog.String("conversation_id", a.ConversationID.String()),
		slog.Bool("changed", changed), slog.String("kek_id", w.deps.Sealer.Keyring().Active()))
	return nil
}
