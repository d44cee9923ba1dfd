package workers

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/jobs"
)

// DefaultCryptoChunkSize is CryptoConfig.ChunkSize when unset: messages
// sealed per transaction by encrypt, read per query by decrypt.
const DefaultCryptoChunkSize = 500

// ErrOutsideExportDir is returned (and the decrypt job cancelled) when an
// export path would not lie directly inside the export directory.
var ErrOutsideExportDir = errors.New("export path is outside the export directory")

// EncryptDecryptWorker does bulk cryptographic work on one conversation:
//
//   - `encrypt` seals the plaintext history of a conversation switched to
//     encrypted (outbox.EncryptConversationTx), a chunk per transaction:
//     each UPDATE replaces content with ciphertext and the same
//     transaction drops the messages' search entries; after each commit
//     the conversation's Redis recent cache is dropped. Progress is the
//     rows themselves (a chunk selects only rows still in plaintext), so a
//     run killed after any chunk resumes where it stopped without sealing
//     anything twice. Near the queue's timeout it snoozes and continues.
//   - `rotate` re-wraps the conversation's data key under the active
//     key-encryption key (messages stay readable: the data key is
//     unchanged).
//   - `decrypt` writes an authorised export of the conversation, as JSON
//     lines in seq order, to a 0600 file in CryptoConfig.ExportDir named after the
//     job id, and records its path and row count as the job's output.
//
// A wrong key, an unknown key id, tampered ciphertext or a destroyed key
// cancels the job with that reason (a retry could not succeed); a partial
// export is removed. Content never reaches logs, errors or the output.
type EncryptDecryptWorker struct {
	Policy[jobs.EncryptDecryptArgs]
	pool      *pgxpool.Pool
	sealer    *keyring.Sealer
	fanout    *fanout.Fanout
	exportDir string
	chunkSize int
	logger    *slog.Logger
}

// CryptoConfig is what the encrypt-decrypt worker needs besides its
// queue.
type CryptoConfig struct {
	Pool *pgxpool.Pool
	// Sealer holds the encryption keys; every job is cancelled with the
	// reason when nil.
	Sealer *keyring.Sealer
	// Fanout, when set, drops the recent-messages cache of a conversation
	// the job sealed, so no plaintext stays cached in Redis.
	Fanout *fanout.Fanout
	// ExportDir is where `decrypt` writes its compliance exports (created
	// 0700 if missing; files 0600); decrypt jobs are cancelled with the
	// reason when empty.
	ExportDir string
	// ChunkSize is how many messages one transaction seals (and one query
	// reads for an export); DefaultCryptoChunkSize when zero.
	ChunkSize int
	Logger    *slog.Logger
}

// NewEncryptDecryptWorker returns the encrypt-decrypt worker of queue q.
func NewEncryptDecryptWorker(q jobs.QueueSpec, cfg CryptoConfig) *EncryptDecryptWorker {
	return &EncryptDecryptWorker{Policy: Policy[jobs.EncryptDecryptArgs]{Queue: q}, pool: cfg.Pool, sealer: cfg.Sealer,
		fanout: cfg.Fanout, exportDir: cfg.ExportDir, chunkSize: cfg.ChunkSize, logger: orDiscard(cfg.Logger)}
}

// EncryptOutput is the output an encrypt job records.
type EncryptOutput struct {
	Operation string `json:"operation"`
	// Sealed counts the messages this run sealed.
	Sealed int64 `json:"sealed"`
	Chunks int   `json:"chunks"`
	// Scheduled counts the scheduled messages it sealed: held ones are
	// then sent sealed, released or cancelled ones keep no plaintext.
	Scheduled int64 `json:"scheduled,omitempty"`
}

// ExportOutput is the output a decrypt job records.
type ExportOutput struct {
	Operation string `json:"operation"`
	Path      string `json:"path"`
	Rows      int64  `json:"rows"`
}

// ExportLine is one line of a decrypt export file.
type ExportLine struct {
	ID        uuid.UUID  `json:"id"`
	Seq       int64      `json:"seq"`
	SenderID  uuid.UUID  `json:"sender_id"`
	CreatedAt time.Time  `json:"created_at"`
	Content   string     `json:"content"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// ExportFileName is the name of the export file of decrypt job jobID.
func ExportFileName(jobID int64) string { return fmt.Sprintf("export-job-%d.jsonl", jobID) }

// Work implements river.Worker.
func (w *EncryptDecryptWorker) Work(ctx context.Context, job *river.Job[jobs.EncryptDecryptArgs]) error {
	a := job.Args
	if w.sealer == nil {
		return river.JobCancel(errors.New("encrypt-decrypt: this runner has no encryption keys (ENCRYPTION_KEYS)"))
	}
	switch {
	case a.Operation == jobs.CryptoOpEncrypt:
		return w.encrypt(ctx, job)
	case a.Operation == jobs.CryptoOpDecrypt:
		return w.export(ctx, job)
	case a.ReencryptContent:
		return w.reencrypt(ctx, job)
	}
	changed, err := w.sealer.Rotate(ctx, w.pool, a.ConversationID)
	if keyError(err) {
		return river.JobCancel(fmt.Errorf("rotating conversation %s: %w", a.ConversationID, err))
	}
	if err != nil {
		return err
	}
	w.logger.Info("conversation key rotated", slog.String("conversation_id", a.ConversationID.String()),
		slog.Bool("changed", changed), slog.String("kek_id", w.sealer.Keyring().Active()))
	return nil
}

// keyError reports whether err is one a retry cannot fix.
func keyError(err error) bool {
	return errors.Is(err, keyring.ErrUnknownKey) || errors.Is(err, keyring.ErrOpen) || errors.Is(err, keyring.ErrShredded)
}

func (w *EncryptDecryptWorker) chunk() int {
	return cmp.Or(w.chunkSize, DefaultCryptoChunkSize)
}

// encrypt seals the conversation's remaining plaintext, a chunk per
// transaction.
func (w *EncryptDecryptWorker) encrypt(ctx context.Context, job *river.Job[jobs.EncryptDecryptArgs]) error {
	conv := job.Args.ConversationID
	handover := time.Now().Add(w.Queue.Timeout - max(w.Queue.Timeout/10, 5*time.Second))
	out := EncryptOutput{Operation: jobs.CryptoOpEncrypt}
	dk, err := w.sealer.ConversationKey(ctx, w.pool, conv, true)
	if keyError(err) {
		return river.JobCancel(fmt.Errorf("encrypting conversation %s: %w", conv, err))
	}
	if err != nil {
		return err
	}
	limit := w.chunk()
	var after int64
	// The progress record counts chunks against what was plaintext when
	// this run started.
	total, err := db.CountPlaintextMessages(ctx, w.pool, conv, 0)
	if err != nil {
		return err
	}
	progress := newProgressWriter(w.pool, w.logger, job.ID)
	steps := int((total + int64(limit) - 1) / int64(limit))
	for {
		n, last, err := w.sealChunk(ctx, dk, conv, after, limit)
		if err != nil {
			_ = river.RecordOutput(ctx, out)
			return err
		}
		if n > 0 {
			out.Sealed += int64(n)
			out.Chunks++
			progress.record(ctx, Progress{Percentage: percent(min(out.Sealed, total), total), Step: "seal history",
				TotalSteps: max(steps, out.Chunks), CurrentStep: out.Chunks, Data: out}, false)
			// After the commit: a refill read before it is refused by
			// the version bump, one read after it sees only ciphertext.
			if w.fanout != nil {
				if err := w.fanout.ForgetConversation(ctx, conv); err != nil {
					_ = river.RecordOutput(ctx, out)
					return snoozeOnRedis(w.Queue, job.JobRow, w.logger, err)
				}
			}
		}
		after = last
		if n < limit {
			break
		}
		if time.Now().After(handover) {
			_ = river.RecordOutput(ctx, out)
			return river.JobSnooze(0)
		}
	}
	progress.record(ctx, Progress{Percentage: 100, Step: "seal history", TotalSteps: out.Chunks, CurrentStep: out.Chunks, Data: out}, true)
	// Then the scheduled messages: once sealed, a held one is sent
	// sealed when due instead of being refused by the conversation.
	for {
		n, err := w.sealScheduledChunk(ctx, dk, conv, limit)
		if err != nil {
			_ = river.RecordOutput(ctx, out)
			return err
		}
		out.Scheduled += int64(n)
		if n < limit {
			break
		}
	}
	// Nothing sealed this run (a resumed or repeated job): the cache may
	// still hold frames cached before an earlier run's crash.
	if out.Sealed == 0 && w.fanout != nil {
		if err := w.fanout.ForgetConversation(ctx, conv); err != nil {
			return snoozeOnRedis(w.Queue, job.JobRow, w.logger, err)
		}
	}
	w.logger.Info("conversation history sealed", slog.Int64("job_id", job.ID),
		slog.String("conversation_id", conv.String()), slog.Int64("sealed", out.Sealed), slog.Int("chunks", out.Chunks))
	return river.RecordOutput(ctx, out)
}

// sealChunk seals up to limit plaintext messages after seq after in one
// transaction and returns how many it found and the last one's seq.
func (w *EncryptDecryptWorker) sealChunk(ctx context.Context, dk *keyring.DataKey, conv uuid.UUID, after int64, limit int) (int, int64, error) {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return 0, after, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	rows, err := db.LockPlaintextMessages(ctx, tx, conv, after, limit)
	if err != nil || len(rows) == 0 {
		return 0, after, err
	}
	sealed, err := sealPlaintext(dk, rows)
	if err != nil {
		return 0, after, err
	}
	if _, err := db.SealMessages(ctx, tx, dk.Label(), sealed); err != nil {
		return 0, after, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, after, fmt.Errorf("committing sealed chunk: %w", err)
	}
	return len(rows), rows[len(rows)-1].Seq, nil
}

// sealScheduledChunk seals up to limit plaintext scheduled messages of
// conv, for the ids they have or will have as messages, in one
// transaction, and returns how many it sealed.
func (w *EncryptDecryptWorker) sealScheduledChunk(ctx context.Context, dk *keyring.DataKey, conv uuid.UUID, limit int) (int, error) {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	rows, err := db.LockPlaintextScheduled(ctx, tx, conv, limit)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	sealed, err := sealPlaintext(dk, rows)
	if err != nil {
		return 0, err
	}
	if _, err := db.SealScheduled(ctx, tx, dk.Label(), sealed); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing sealed scheduled messages: %w", err)
	}
	return len(rows), nil
}

// sealPlaintext seals each row's text under dk, bound to its id (the
// message's, or the one a scheduled message will have once sent).
func sealPlaintext(dk *keyring.DataKey, rows []db.PlaintextMessage) ([]db.SealedMessage, error) {
	sealed := make([]db.SealedMessage, len(rows))
	for i, m := range rows {
		ct, err := dk.Seal([]byte(m.Content), m.ID[:])
		if err != nil {
			return nil, fmt.Errorf("sealing message %s: %w", m.ID, err)
		}
		sealed[i] = db.SealedMessage{ID: m.ID, Ciphertext: ct}
	}
	return sealed, nil
}

// exportPath returns the export file of jobID inside dir, or
// ErrOutsideExportDir when it would not lie directly inside it.
func exportPath(dir string, jobID int64) (string, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("export directory: %w", err)
	}
	p := filepath.Join(root, ExportFileName(jobID))
	if rel, err := filepath.Rel(root, p); err != nil || rel != filepath.Base(p) {
		return "", ErrOutsideExportDir
	}
	return p, nil
}

// export writes the conversation, decrypted, to its export file.
func (w *EncryptDecryptWorker) export(ctx context.Context, job *river.Job[jobs.EncryptDecryptArgs]) (err error) {
	conv := job.Args.ConversationID
	if w.exportDir == "" {
		return river.JobCancel(errors.New("encrypt-decrypt: decrypt: this runner has no export directory (EXPORT_DIR)"))
	}
	path, err := exportPath(w.exportDir, job.ID)
	if err != nil {
		return river.JobCancel(fmt.Errorf("decrypt: %w", err))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating export directory: %w", err)
	}
	// Written under a temporary name and renamed when complete, so a file
	// with the final name is always a whole export.
	partial := path + ".partial"
	if err := os.Remove(partial); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing an earlier partial export: %w", err)
	}
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating export file: %w", err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(partial)
		}
	}()
	if err := f.Chmod(0o600); err != nil { // whatever the umask
		return fmt.Errorf("export file mode: %w", err)
	}

	rows, err := w.writeExport(ctx, f, conv)
	if keyError(err) {
		return river.JobCancel(fmt.Errorf("decrypting conversation %s: %w", conv, err))
	}
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing export file: %w", err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("closing export file: %w", cerr)
	}
	if err := os.Rename(partial, path); err != nil {
		return fmt.Errorf("naming export file: %w", err)
	}
	w.logger.Info("conversation exported", slog.Int64("job_id", job.ID),
		slog.String("conversation_id", conv.String()), slog.String("requested_by", job.Args.RequestedBy.String()),
		slog.String("path", path), slog.Int64("rows", rows))
	return river.RecordOutput(ctx, ExportOutput{Operation: jobs.CryptoOpDecrypt, Path: path, Rows: rows})
}

// writeExport writes every message of conv to f, from one consistent
// snapshot, and returns how many.
func (w *EncryptDecryptWorker) writeExport(ctx context.Context, f *os.File, conv uuid.UUID) (int64, error) {
	tx, err := w.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	buf := bufio.NewWriter(f)
	enc := json.NewEncoder(buf)
	var (
		keys  = map[string]*keyring.DataKey{} // by label
		rows  int64
		after int64
	)
	limit := w.chunk()
	for {
		ms, err := db.ExportMessages(ctx, tx, conv, after, limit)
		if err != nil {
			return rows, err
		}
		for _, m := range ms {
			line := ExportLine{ID: m.ID, Seq: m.Seq, SenderID: m.SenderID, CreatedAt: m.CreatedAt, DeletedAt: m.DeletedAt}
			switch {
			case m.Content != nil:
				line.Content = *m.Content
			case m.KeyID == nil:
				return rows, fmt.Errorf("message %s: %w", m.ID, keyring.ErrUnknownKey)
			default:
				dk := keys[*m.KeyID]
				if dk == nil {
					if dk, err = w.sealer.KeyFor(ctx, tx, conv, *m.KeyID); err != nil {
						return rows, fmt.Errorf("message %s: %w", m.ID, err)
					}
					keys[*m.KeyID] = dk
				}
				plain, err := dk.Open(m.Ciphertext, m.ID[:])
				if err != nil {
					return rows, fmt.Errorf("message %s: %w", m.ID, err)
				}
				line.Content = string(plain)
			}
			if err := enc.Encode(line); err != nil {
				return rows, fmt.Errorf("writing export: %w", err)
			}
			rows++
		}
		if len(ms) < limit {
			break
		}
		after = ms[len(ms)-1].Seq
	}
	if err := buf.Flush(); err != nil {
		return rows, fmt.Errorf("writing export: %w", err)
	}
	return rows, nil
}

// ReencryptOutput is the output a rotate job with reencrypt_content
// records.
type ReencryptOutput struct {
	Operation string `json:"operation"`
	// Generation is the data key generation the content now uses.
	Generation int `json:"generation"`
	// Resealed counts the messages this run moved to it.
	Resealed int64 `json:"resealed"`
	// Retired counts the older generations deleted at the end.
	Retired int64 `json:"retired"`
}

// reencrypt moves a conversation's content to a fresh data key: it makes
// the next key generation (wrapped by the active key-encryption key),
// re-seals every message still under an older one, a chunk per
// transaction, then deletes the older generations in a transaction that
// first finds nothing left under them. A message stored meanwhile with an
// older generation either holds that generation's row until it commits
// (the retirement waits and then sees it, so another pass moves it) or
// finds it gone and is sealed again by its sender (outbox.ErrKeyRetired).
// Progress is the rows themselves, and a rerun reuses the generation its
// first run made (NewGeneration with the job's creation time).
func (w *EncryptDecryptWorker) reencrypt(ctx context.Context, job *river.Job[jobs.EncryptDecryptArgs]) error {
	conv := job.Args.ConversationID
	out := ReencryptOutput{Operation: jobs.CryptoOpRotate}
	handover := time.Now().Add(w.Queue.Timeout - max(w.Queue.Timeout/10, 5*time.Second))
	dk, err := w.sealer.NewGeneration(ctx, w.pool, conv, job.CreatedAt)
	if errors.Is(err, keyring.ErrShredded) {
		// No key at all: nothing of this conversation is encrypted.
		return river.RecordOutput(ctx, out)
	}
	if keyError(err) {
		return river.JobCancel(fmt.Errorf("re-encrypting conversation %s: %w", conv, err))
	}
	if err != nil {
		return err
	}
	out.Generation, _ = keyring.LabelGeneration(dk.Label())
	old := map[string]*keyring.DataKey{}
	limit := w.chunk()
	for {
		n, err := w.resealChunks(ctx, dk, old, conv, limit)
		if err != nil {
			_ = river.RecordOutput(ctx, out)
			if keyError(err) {
				return river.JobCancel(fmt.Errorf("re-encrypting conversation %s: %w", conv, err))
			}
			return err
		}
		out.Resealed += int64(n)
		if n == limit {
			if time.Now().After(handover) {
				_ = river.RecordOutput(ctx, out)
				return river.JobSnooze(0)
			}
			continue
		}
		retired, done, err := w.retireOlderKeys(ctx, conv, dk)
		if err != nil {
			_ = river.RecordOutput(ctx, out)
			return err
		}
		if done {
			out.Retired = retired
			break
		}
	}
	w.logger.Info("conversation content re-encrypted under a new data key", slog.Int64("job_id", job.ID),
		slog.String("conversation_id", conv.String()), slog.Int("generation", out.Generation),
		slog.Int64("resealed", out.Resealed), slog.Int64("retired_generations", out.Retired))
	return river.RecordOutput(ctx, out)
}

// resealChunks moves up to limit rows not yet under dk to it: a chunk of
// messages, or when none is left, of held scheduled messages. It returns
// how many it moved (limit when there may be more).
func (w *EncryptDecryptWorker) resealChunks(ctx context.Context, dk *keyring.DataKey, old map[string]*keyring.DataKey, conv uuid.UUID, limit int) (int, error) {
	for _, table := range db.SealedTables {
		n, err := w.resealChunk(ctx, table, dk, old, conv, limit)
		if err != nil || n > 0 {
			return n, err
		}
	}
	return 0, nil
}

// resealChunk moves up to limit rows of table not yet under dk to it, in
// one transaction, and returns how many it moved. Scheduled messages are
// sealed for the id they will have as messages, their own.
func (w *EncryptDecryptWorker) resealChunk(ctx context.Context, table db.SealedTable, dk *keyring.DataKey, old map[string]*keyring.DataKey, conv uuid.UUID, limit int) (int, error) {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	rows, err := db.LockSealedNotUnderKey(ctx, tx, table, conv, dk.Label(), limit)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	sealed := make([]db.SealedMessage, len(rows))
	for i, m := range rows {
		from := old[m.KeyID]
		if from == nil {
			if from, err = w.sealer.KeyFor(ctx, tx, conv, m.KeyID); err != nil {
				return 0, fmt.Errorf("message %s: %w", m.ID, err)
			}
			old[m.KeyID] = from
		}
		plain, err := from.Open(m.Ciphertext, m.ID[:])
		if err != nil {
			return 0, fmt.Errorf("message %s: %w", m.ID, err)
		}
		if sealed[i].Ciphertext, err = dk.Seal(plain, m.ID[:]); err != nil {
			return 0, fmt.Errorf("sealing message %s: %w", m.ID, err)
		}
		sealed[i].ID = m.ID
	}
	if _, err := db.ResealSealed(ctx, tx, table, dk.Label(), sealed); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing re-sealed chunk: %w", err)
	}
	return len(rows), nil
}

// retireOlderKeys deletes the generations older than dk's, unless a
// message or a held scheduled message still uses one (then done is false
// and nothing is deleted).
func (w *EncryptDecryptWorker) retireOlderKeys(ctx context.Context, conv uuid.UUID, dk *keyring.DataKey) (retired int64, done bool, err error) {
	gen, _ := keyring.LabelGeneration(dk.Label())
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	// The delete waits for senders holding an old generation; the count,
	// a later statement, sees what they committed.
	retired, err = db.RetireOlderConversationKeys(ctx, tx, conv, gen)
	if err != nil {
		return 0, false, err
	}
	left, err := db.CountSealedNotUnderKey(ctx, tx, conv, dk.Label())
	if err != nil || left > 0 {
		return 0, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, fmt.Errorf("committing key retirement: %w", err)
	}
	return retired, true, nil
}
