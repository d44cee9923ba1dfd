package db

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// ErrEncryptedConversation is returned when plaintext is written to a
// conversation switched to encrypted: its messages must be sealed first.
// The caller's transaction must be rolled back.
var ErrEncryptedConversation = errors.New("the conversation is encrypted: plaintext messages are refused")

// constraintEncryptedConversation names the check (a trigger, migration
// 00011) that refuses plaintext in an encrypted conversation.
const constraintEncryptedConversation = "messages_encrypted_conversation_check"

// SwitchConversationToEncrypted marks a live conversation encrypted: from
// the commit on, every plaintext insert into it fails with
// ErrEncryptedConversation. Switching again is a no-op. ErrNotFound for an
// unknown or deleted conversation.
func SwitchConversationToEncrypted(ctx context.Context, q Querier, conversation uuid.UUID) error {
	_, err := dbsqlc.New(q).SwitchConversationToEncrypted(ctx, conversation)
	return translate("switching conversation to encrypted", err)
}

// PlaintextMessage is a message whose content is still stored in clear.
// Its Content must never be logged.
type PlaintextMessage struct {
	ID      uuid.UUID
	Seq     int64
	Content string
}

// LockPlaintextMessages returns up to limit plaintext messages of a
// conversation with seq above afterSeq, in seq order, locked until tx ends.
func LockPlaintextMessages(ctx context.Context, tx pgx.Tx, conversation uuid.UUID, afterSeq int64, limit int) ([]PlaintextMessage, error) {
	rows, err := dbsqlc.New(tx).LockPlaintextMessages(ctx, dbsqlc.LockPlaintextMessagesParams{
		ConversationID: conversation, AfterSeq: afterSeq, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, translate("locking plaintext messages", err)
	}
	out := make([]PlaintextMessage, len(rows))
	for i, r := range rows {
		out[i] = PlaintextMessage{ID: r.ID, Seq: r.Seq, Content: r.Content}
	}
	return out, nil
}

// LockPlaintextScheduled returns up to limit scheduled messages of a
// conversation still in plaintext (any status), locked in tx (Seq is 0).
func LockPlaintextScheduled(ctx context.Context, tx pgx.Tx, conversation uuid.UUID, limit int) ([]PlaintextMessage, error) {
	rows, err := dbsqlc.New(tx).LockPlaintextScheduled(ctx, dbsqlc.LockPlaintextScheduledParams{ConversationID: conversation, MaxRows: int32(limit)})
	if err != nil {
		return nil, translate("locking plaintext scheduled messages", err)
	}
	out := make([]PlaintextMessage, len(rows))
	for i, r := range rows {
		out[i] = PlaintextMessage{ID: r.ID, Content: r.Content}
	}
	return out, nil
}

// SealScheduled replaces the content of each still-plaintext scheduled
// message with its ciphertext and keyID, in tx, and returns how many it
// sealed.
func SealScheduled(ctx context.Context, tx pgx.Tx, keyID string, sealed []SealedMessage) (int64, error) {
	ids, cts := splitSealed(sealed)
	n, err := dbsqlc.New(tx).SealScheduled(ctx, dbsqlc.SealScheduledParams{KeyID: keyID, Ids: ids, Ciphertexts: cts})
	return n, translate("sealing scheduled messages", err)
}

// SealedMessage is a message's ciphertext to store in place of its content.
type SealedMessage struct {
	ID         uuid.UUID
	Ciphertext []byte
}

// splitSealed returns the ids and ciphertexts of sealed, as the
// statements that store them take them (two arrays, unnested together).
func splitSealed(sealed []SealedMessage) ([]uuid.UUID, [][]byte) {
	ids := make([]uuid.UUID, len(sealed))
	cts := make([][]byte, len(sealed))
	for i, s := range sealed {
		ids[i], cts[i] = s.ID, s.Ciphertext
	}
	return ids, cts
}

// SealMessages replaces the content of each still-plaintext message with
// its ciphertext and keyID, and removes their search entries and search
// backlog rows (encrypted messages are never indexed), in tx. It returns
// how many were sealed.
func SealMessages(ctx context.Context, tx pgx.Tx, keyID string, sealed []SealedMessage) (int64, error) {
	if len(sealed) == 0 {
		return 0, nil
	}
	ids, cts := splitSealed(sealed)
	q := dbsqlc.New(tx)
	n, err := q.SealMessages(ctx, dbsqlc.SealMessagesParams{KeyID: keyID, Ids: ids, Ciphertexts: cts})
	if err != nil {
		return 0, translate("sealing messages", err)
	}
	// The backlog first, in a statement of its own: it waits for an
	// index-pending sweep that took these messages before they were
	// sealed, so the plaintext entry it wrote is removed just after.
	if _, err := q.DeleteSearchBacklog(ctx, ids); err != nil {
		return 0, translate("removing messages from the search backlog", err)
	}
	if _, err := q.DeleteSearchEntries(ctx, ids); err != nil {
		return 0, translate("removing search entries", err)
	}
	return n, nil
}

// SealedRow is a stored message's ciphertext and the label of the key
// that sealed it.
type SealedRow struct {
	ID         uuid.UUID
	Seq        int64
	Ciphertext []byte
	KeyID      string
}

// SealedTable is a table that holds sealed content: messages, or
// scheduled messages held sealed until they are due.
type SealedTable int

// The tables re-encryption moves to a new key generation.
const (
	SealedMessages SealedTable = iota
	SealedScheduled
)

// SealedTables are all of them, in the order re-encryption works them.
var SealedTables = []SealedTable{SealedMessages, SealedScheduled}

// LockSealedNotUnderKey returns, locked in tx, up to limit sealed rows of
// table in a conversation whose key label is not keyID (messages in seq
// order; Seq is 0 for scheduled messages).
func LockSealedNotUnderKey(ctx context.Context, tx pgx.Tx, table SealedTable, conversation uuid.UUID, keyID string, limit int) ([]SealedRow, error) {
	q := dbsqlc.New(tx)
	var out []SealedRow
	if table == SealedScheduled {
		rows, err := q.LockScheduledNotUnderKey(ctx, dbsqlc.LockScheduledNotUnderKeyParams{
			ConversationID: conversation, KeyID: keyID, MaxRows: int32(limit),
		})
		if err != nil {
			return nil, translate("locking scheduled messages to re-seal", err)
		}
		for _, r := range rows {
			out = append(out, SealedRow{ID: r.ID, Ciphertext: r.Ciphertext, KeyID: r.KeyID})
		}
		return out, nil
	}
	rows, err := q.LockMessagesNotUnderKey(ctx, dbsqlc.LockMessagesNotUnderKeyParams{
		ConversationID: conversation, KeyID: keyID, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, translate("locking messages to re-seal", err)
	}
	for _, r := range rows {
		out = append(out, SealedRow{ID: r.ID, Seq: r.Seq, Ciphertext: r.Ciphertext, KeyID: r.KeyID})
	}
	return out, nil
}

// CountSealedNotUnderKey counts a conversation's sealed messages and
// sealed scheduled messages whose key label is not keyID.
func CountSealedNotUnderKey(ctx context.Context, q Querier, conversation uuid.UUID, keyID string) (int64, error) {
	n, err := dbsqlc.New(q).CountMessagesNotUnderKey(ctx, dbsqlc.CountMessagesNotUnderKeyParams{ConversationID: conversation, KeyID: keyID})
	if err != nil {
		return 0, translate("counting messages to re-seal", err)
	}
	m, err := dbsqlc.New(q).CountScheduledNotUnderKey(ctx, dbsqlc.CountScheduledNotUnderKeyParams{ConversationID: conversation, KeyID: keyID})
	return n + m, translate("counting scheduled messages to re-seal", err)
}

// ResealSealed replaces the ciphertext of each row of table with the new
// one, under key label keyID, in tx, and returns how many it changed.
func ResealSealed(ctx context.Context, tx pgx.Tx, table SealedTable, keyID string, sealed []SealedMessage) (int64, error) {
	ids, cts := splitSealed(sealed)
	if table == SealedScheduled {
		n, err := dbsqlc.New(tx).ResealScheduled(ctx, dbsqlc.ResealScheduledParams{KeyID: keyID, Ids: ids, Ciphertexts: cts})
		return n, translate("re-sealing scheduled messages", err)
	}
	n, err := dbsqlc.New(tx).ResealMessages(ctx, dbsqlc.ResealMessagesParams{KeyID: keyID, Ids: ids, Ciphertexts: cts})
	return n, translate("re-sealing messages", err)
}

// ExportMessages returns up to limit messages of a conversation with seq
// above afterSeq, in seq order, deleted ones included.
func ExportMessages(ctx context.Context, q Querier, conversation uuid.UUID, afterSeq int64, limit int) ([]Message, error) {
	rows, err := dbsqlc.New(q).ExportMessages(ctx, dbsqlc.ExportMessagesParams{
		ConversationID: conversation, AfterSeq: afterSeq, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, translate("reading messages for export", err)
	}
	return messagesFromRows(rows), nil
}

// ConversationExists reports whether a conversation exists (deleted for
// everyone or not: its rows are still there).
func ConversationExists(ctx context.Context, q Querier, conversation uuid.UUID) (bool, error) {
	ok, err := dbsqlc.New(q).ConversationExists(ctx, conversation)
	return ok, translate("checking conversation", err)
}

// CountPlaintextMessages counts a conversation's messages stored in
// plaintext after seq after (what sealing its history still has to do).
func CountPlaintextMessages(ctx context.Context, q Querier, conversation uuid.UUID, after int64) (int64, error) {
	n, err := dbsqlc.New(q).CountPlaintextMessages(ctx, dbsqlc.CountPlaintextMessagesParams{ConversationID: conversation, AfterSeq: after})
	return n, translate("counting plaintext messages", err)
}
