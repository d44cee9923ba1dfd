// Package outbox is the write API a message service calls: it stores a
// message and enqueues the work that follows it in one transaction, so both
// commit or neither does (the transactional outbox).
//
// SendTx runs inside the caller's transaction and never begins, commits or
// rolls it back; Send is the companion for callers without a transaction.
package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/validation"
)

// DefaultMaxContentBytes is Config.MaxContentBytes when unset: 64 KiB.
const DefaultMaxContentBytes = 64 << 10

// sealOverhead is what sealing adds to content (nonce and tag), so content
// at the limit still fits once encrypted.
const sealOverhead = 64

// maxKeyIDBytes bounds Message.KeyID.
const maxKeyIDBytes = 128

// ErrNotParticipant is returned when the conversation exists and the sender
// or the recipient is not one of its participants. The caller's transaction
// must be rolled back (Send does so itself).
var ErrNotParticipant = errors.New("outbox: sender or recipient is not a participant of the conversation")

// ErrEncryptedConversation is returned for a plaintext message to a
// conversation switched to encrypted (EncryptConversationTx): send it
// with Message.Encrypt, or sealed (Message.Ciphertext). The caller's
// transaction must be rolled back. Send, given a Config.Sealer, seals and
// sends again itself.
var ErrEncryptedConversation = errors.New("outbox: the conversation is encrypted; its messages must be sealed before they are sent")

// ErrKeyRetired is returned when a message was sealed with a data key
// generation that a re-encryption has since retired (or that does not
// exist): nothing was written; seal it again with the conversation's
// newest key and resend.
var ErrKeyRetired = errors.New("outbox: the message was sealed with a retired data key generation; seal it again")

// ErrNoSealer is returned for a message that must be sealed (Message.Encrypt,
// or a plaintext message to an encrypted conversation, which it then also
// wraps as ErrEncryptedConversation) by an Outbox without Config.Sealer.
// Nothing was written.
var ErrNoSealer = errors.New("outbox: no sealer: this outbox has no encryption keys")

// maxSealAttempts bounds Send's tries of one message when re-encryptions
// keep retiring the key generation it was sealed with.
const maxSealAttempts = 3

// Config configures an Outbox.
type Config struct {
	// MaxContentBytes caps a message's content (or ciphertext) in bytes.
	// Default DefaultMaxContentBytes.
	MaxContentBytes int
	// Sealer, when set, seals the content of messages that ask for it
	// (Message.Encrypt) and of plaintext messages to encrypted
	// conversations, with the conversation's newest data key, so only
	// ciphertext reaches the database. Without it such messages are
	// refused with ErrNoSealer.
	Sealer *keyring.Sealer
}

// Outbox writes messages and their jobs. It is safe for concurrent use.
type Outbox struct {
	river      *river.Client[pgx.Tx]
	maxContent int
	sealer     *keyring.Sealer
}

// New returns an Outbox that inserts jobs through client, which may be an
// insert-only River client (no queues or workers).
func New(client *river.Client[pgx.Tx], cfg Config) (*Outbox, error) {
	if client == nil {
		return nil, errors.New("outbox: River client is required")
	}
	if cfg.MaxContentBytes < 0 {
		return nil, fmt.Errorf("outbox: Config.MaxContentBytes must be positive, got %d", cfg.MaxContentBytes)
	}
	if cfg.MaxContentBytes == 0 {
		cfg.MaxContentBytes = DefaultMaxContentBytes
	}
	return &Outbox{river: client, maxContent: cfg.MaxContentBytes, sealer: cfg.Sealer}, nil
}

// Message is a message to send. Set either Content (plaintext, sealed by
// the outbox when Encrypt is set) or Ciphertext with KeyID (content
// sealed before it reached the outbox).
type Message struct {
	// ID is the message id; a new UUIDv7 (time-ordered) when zero.
	ID             uuid.UUID
	ConversationID uuid.UUID
	SenderID       uuid.UUID
	// RecipientID is the other user of a direct conversation. Leave it
	// zero for a message to a group (ConversationID a group's): the
	// sender must be a current member, and the message goes to every
	// member (ErrNotParticipant otherwise, or when there is no such
	// group).
	RecipientID uuid.UUID
	Content     string
	Ciphertext  []byte
	KeyID       string
	// Encrypt asks the outbox to seal Content (Config.Sealer) for this
	// message's id before storing it: only ciphertext reaches the
	// database, job args and Redis. A plaintext message to a conversation
	// switched to encrypted is sealed as if it were set.
	Encrypt bool
	// Priority is critical, high, normal or low; normal when empty.
	Priority string
	// CallerPublishes says the caller publishes the message itself right
	// after commit (the gateway's fast path, broadcast chunks), so no
	// send-message job is inserted: the runner's deliver-pending sweep
	// delivers it instead if it is still pending DefaultDeliveryBackstop
	// (DELIVERY_BACKSTOP_DELAY) after it was written, whatever became of
	// the caller.
	CallerPublishes bool
	// AttachmentIDs are attachments the sender uploaded, to carry with the
	// message: at most MaxAttachments, distinct, each the sender's, not
	// sent with another message and not expired (else a validation error
	// on attachment_ids, and nothing is written). The message stores them
	// as {id, content_type, size} (Result.Attachments, its frames), and
	// from then on its recipient may read them too.
	AttachmentIDs []uuid.UUID
}

// MaxAttachments is the most attachments one message carries.
const MaxAttachments = 10

// DefaultDeliveryBackstop is how long a message may stay pending before
// the runner's deliver-pending sweep publishes it: long enough that a
// caller publishing right after commit has marked it sent first.
const DefaultDeliveryBackstop = 2 * time.Second

// Result is what SendTx wrote.
type Result struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	Seq            int64
	Status         string
	CreatedAt      time.Time
	// MembershipVersion is a group's membership version when the message
	// took its seq (0 for a direct message): its audience is the
	// membership at that version (package delivery caches it by version).
	MembershipVersion int64
	// Attachments is the JSON array of the message's attachments as stored
	// ({id, content_type, size} each); nil when it has none.
	Attachments []byte
	// Encrypted says the message was stored sealed (asked for, sealed
	// before it reached the outbox, or sealed because its conversation is
	// encrypted).
	Encrypted bool
	// Jobs lists the inserted jobs' kinds and ids, in insertion order.
	Jobs []Job
}

// Job identifies one inserted job.
type Job struct {
	ID   int64
	Kind string
}

// validated is a Message that passed validate.
type validated struct {
	row             db.NewMessage
	priority        jobs.Priority
	callerPublishes bool
	attachmentIDs   []uuid.UUID
}

// followUps appends to params the jobs the stored message id needs: its
// delivery (unless the caller publishes it) and its recipient's
// notification. Search indexing needs no job: the message's insert put a
// plaintext message in the search backlog, which the runner's
// index-pending sweep works in batches. A group message's one
// send-notification job names no recipient: it notifies the members.
func (v validated) followUps(id uuid.UUID, params []river.InsertManyParams) []river.InsertManyParams {
	prio := &river.InsertOpts{Priority: int(v.priority)}
	if !v.callerPublishes {
		params = append(params, river.InsertManyParams{Args: jobs.SendMessageArgs{MessageID: id}, InsertOpts: prio})
	}
	return append(params,
		river.InsertManyParams{Args: jobs.SendNotificationArgs{MessageID: id, RecipientID: v.row.RecipientID}, InsertOpts: prio})
}

func (o *Outbox) validate(m Message) (validated, error) {
	var v validated
	switch {
	case m.ConversationID == uuid.Nil:
		return v, validation.Errorf("conversation_id", "is required")
	case m.SenderID == uuid.Nil:
		return v, validation.Errorf("sender_id", "is required")
	case m.RecipientID == m.SenderID:
		return v, validation.Errorf("recipient_id", "must differ from sender_id")
	}

	v.callerPublishes = m.CallerPublishes

	if err := validateAttachments(m.AttachmentIDs); err != nil {
		return v, err
	}
	v.attachmentIDs = m.AttachmentIDs

	v.priority = jobs.PriorityNormal
	if m.Priority != "" {
		p, err := jobs.ParsePriority(m.Priority)
		if err != nil {
			return v, validation.Errorf("priority", "%v", err)
		}
		v.priority = p
	}

	id := m.ID
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return v, fmt.Errorf("outbox: generating message id: %w", err)
		}
	}
	v.row = db.NewMessage{
		ID:             id,
		ConversationID: m.ConversationID,
		SenderID:       m.SenderID,
		RecipientID:    m.RecipientID,
		Priority:       int(v.priority),
	}

	if m.Ciphertext != nil || m.KeyID != "" {
		switch {
		case m.Content != "":
			return v, validation.Errorf("content", "must be empty when ciphertext is set")
		case len(m.Ciphertext) == 0:
			return v, validation.Errorf("ciphertext", "is required when key_id is set")
		case len(m.Ciphertext) > o.maxContent+sealOverhead:
			return v, validation.Errorf("ciphertext", "is %d bytes, over the limit of %d", len(m.Ciphertext), o.maxContent+sealOverhead)
		case m.KeyID == "":
			return v, validation.Errorf("key_id", "is required when ciphertext is set")
		case len(m.KeyID) > maxKeyIDBytes || !utf8.ValidString(m.KeyID):
			return v, validation.Errorf("key_id", "must be valid UTF-8 of at most %d bytes", maxKeyIDBytes)
		}
		keyID := m.KeyID
		v.row.Ciphertext, v.row.KeyID = m.Ciphertext, &keyID
		return v, nil
	}

	if err := ValidateContent(m.Content, o.maxContent); err != nil {
		return v, err
	}
	content := m.Content
	v.row.Content = &content
	return v, nil
}

// validateAttachments checks a message's attachment list: at most
// MaxAttachments, no zero id, none twice. Most messages have none, and
// the write path then allocates nothing here.
func validateAttachments(ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	if len(ids) > MaxAttachments {
		return validation.Errorf("attachment_ids", "has %d attachments, over the limit of %d", len(ids), MaxAttachments)
	}
	seen := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		switch {
		case id == uuid.Nil:
			return validation.Errorf("attachment_ids", "must be attachment ids")
		case seen[id]:
			return validation.Errorf("attachment_ids", "lists %s twice", id)
		}
		seen[id] = true
	}
	return nil
}

// SendTx validates m, writes it with its conversation's next seq (creating
// the conversation with sender and recipient as participants on first use,
// and a plaintext message's row in the search backlog), and inserts its
// jobs in one statement: send-message (unless Message.CallerPublishes) and
// send-notification at the message's priority.
//
// A message with Encrypt is sealed first, in tx (a conversation's first
// data key is created in it). A plaintext message to an encrypted
// conversation returns ErrEncryptedConversation (send it again with
// Encrypt in a new transaction; Send does so itself), and one sealed with
// a key generation a re-encryption retired meanwhile ErrKeyRetired (send
// it again).
//
// It works inside tx and never commits or rolls it back. Invalid input
// returns a *validation.Error before anything is written. ErrNotParticipant,
// ErrEncryptedConversation, ErrKeyRetired and database errors leave tx in
// a state the caller must roll back.
func (o *Outbox) SendTx(ctx context.Context, tx pgx.Tx, m Message) (*Result, error) {
	v, err := o.prepare(ctx, tx, m)
	if err != nil {
		return nil, err
	}
	ins, err := o.insertMessage(ctx, tx, &v)
	if err != nil {
		return nil, err
	}
	return o.insertJobs(ctx, tx, v, ins)
}

// insertMessage stores the message in tx, holding its sealing key's
// generation first when it is encrypted, and takes its attachments.
func (o *Outbox) insertMessage(ctx context.Context, tx pgx.Tx, v *validated) (db.InsertedMessage, error) {
	if len(v.attachmentIDs) > 0 {
		refs, unavailable, err := db.LockAttachments(ctx, tx, v.row.SenderID, v.row.ID, v.attachmentIDs)
		if err != nil {
			return db.InsertedMessage{}, fmt.Errorf("outbox: %w", err)
		}
		if len(unavailable) > 0 {
			return db.InsertedMessage{}, validation.Errorf("attachment_ids",
				"%s is not an attachment of the sender's that is unsent and unexpired", unavailable[0])
		}
		v.row.Attachments = refs
	}
	ins, err := o.insertRow(ctx, tx, *v)
	if err != nil {
		return db.InsertedMessage{}, err
	}
	if len(v.attachmentIDs) > 0 {
		if err := db.LinkAttachments(ctx, tx, ins.ID, v.attachmentIDs); err != nil {
			return db.InsertedMessage{}, fmt.Errorf("outbox: %w", err)
		}
	}
	return ins, nil
}

// holdKeyGeneration holds a sealed message's key generation until tx
// commits, so a re-encryption cannot retire it under the message (it
// waits, then finds the message and moves it too); ErrKeyRetired when it
// is gone already. A plaintext message holds nothing.
func holdKeyGeneration(ctx context.Context, tx pgx.Tx, v validated) error {
	if v.row.KeyID == nil {
		return nil
	}
	gen, ok := keyring.LabelGeneration(*v.row.KeyID)
	if !ok {
		return nil
	}
	err := db.LockConversationKeyGeneration(ctx, tx, v.row.ConversationID, gen)
	if errors.Is(err, db.ErrNotFound) {
		return ErrKeyRetired
	}
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// insertRow writes the message row, holding its sealing key's generation
// first when it is encrypted.
func (o *Outbox) insertRow(ctx context.Context, tx pgx.Tx, v validated) (db.InsertedMessage, error) {
	if err := holdKeyGeneration(ctx, tx, v); err != nil {
		return db.InsertedMessage{}, err
	}
	ins, err := db.InsertMessage(ctx, tx, v.row)
	if err != nil {
		return db.InsertedMessage{}, insertRowError(v.row, err)
	}
	return ins, nil
}

// insertJobs inserts the jobs of the stored message ins in tx and returns
// what the send wrote.
func (o *Outbox) insertJobs(ctx context.Context, tx pgx.Tx, v validated, ins db.InsertedMessage) (*Result, error) {
	inserted, err := o.river.InsertManyTx(ctx, tx, v.followUps(ins.ID, nil))
	if err != nil {
		return nil, fmt.Errorf("outbox: inserting jobs: %w", err)
	}

	res := &Result{
		ID:                ins.ID,
		ConversationID:    ins.ConversationID,
		Seq:               ins.Seq,
		Status:            string(ins.Status),
		CreatedAt:         ins.CreatedAt,
		MembershipVersion: ins.MembershipVersion,
		Attachments:       v.row.Attachments,
		Encrypted:         v.row.KeyID != nil,
		Jobs:              make([]Job, 0, len(inserted)),
	}
	for _, r := range inserted {
		res.Jobs = append(res.Jobs, Job{ID: r.Job.ID, Kind: r.Job.Kind})
	}
	return res, nil
}

// insertRowError is insertError for a single message row, saying what a
// refused group message lacked.
func insertRowError(row db.NewMessage, err error) error {
	if errors.Is(err, db.ErrNotParticipant) && row.RecipientID == uuid.Nil {
		return fmt.Errorf("%w: %s is not a group with the sender as a current member (a direct message needs a recipient)",
			ErrNotParticipant, row.ConversationID)
	}
	return insertError(err)
}

// insertError maps an error of inserting messages onto the outbox's own.
func insertError(err error) error {
	switch {
	case errors.Is(err, db.ErrNotParticipant):
		return ErrNotParticipant
	case errors.Is(err, db.ErrEncryptedConversation):
		return ErrEncryptedConversation
	default:
		return fmt.Errorf("outbox: %w", err)
	}
}

// dmNamespace derives direct-conversation ids (UUIDv5 of the two user ids).
var dmNamespace = uuid.MustParse("8f2b6f0e-3c1a-4d7e-9b8a-6e5d4c3b2a19")

// DirectConversationID returns the conversation id two users share for
// direct messages: the same whoever asks (a UUIDv5 of the ordered pair).
func DirectConversationID(a, b uuid.UUID) uuid.UUID {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return uuid.NewSHA1(dmNamespace, append(a[:], b[:]...))
}

// Querier runs queries: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Querier = db.Querier

// CheckContent is ValidateContent with this outbox's limit, for callers
// that store content to send later (a broadcast) and must refuse what the
// outbox would refuse before writing anything.
func (o *Outbox) CheckContent(content string) error {
	return ValidateContent(content, o.maxContent)
}

// ValidateContent checks message text: not blank, at most maxBytes, valid
// UTF-8 without NUL. Callers that encrypt content before it reaches the
// outbox check the plaintext with it first.
func ValidateContent(content string, maxBytes int) error {
	switch {
	case strings.TrimSpace(content) == "":
		return validation.Errorf("content", "must not be empty")
	case len(content) > maxBytes:
		return validation.Errorf("content", "is %d bytes, over the limit of %d", len(content), maxBytes)
	case !utf8.ValidString(content):
		return validation.Errorf("content", "must be valid UTF-8")
	case strings.ContainsRune(content, 0):
		return validation.Errorf("content", "must not contain NUL characters")
	}
	return nil
}

// Beginner starts transactions: a *pgxpool.Pool, a *pgx.Conn, or a pgx.Tx
// (which begins a savepoint).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Send runs SendTx in a transaction of its own: it begins, commits on
// success and rolls back on any error, so an error means nothing was
// written. Given a pool (or a connection outside a transaction), a
// plaintext message's transaction begins in the same round trip as its
// insert: three round trips in all (begin and insert, jobs, commit).
//
// Sealing is Send's too: a message with Encrypt is sealed first (b must
// also run queries, as a pool, a connection and a transaction do); a
// plaintext message refused because its conversation was switched to
// encrypted is sealed and sent again; a sealed message whose key
// generation a re-encryption retired between sealing and storing is
// sealed again with the newest. Each retry follows a rollback, so
// nothing is written twice.
func (o *Outbox) Send(ctx context.Context, b Beginner, m Message) (*Result, error) {
	for attempt := 1; ; attempt++ {
		res, err := o.sendOnce(ctx, b, m)
		switch {
		case errors.Is(err, ErrEncryptedConversation) && !m.Encrypt && m.Ciphertext == nil && o.sealer != nil:
			// Every message to it is sealed, whatever the caller asked.
			m.Encrypt = true
		case errors.Is(err, ErrEncryptedConversation) && !m.Encrypt && m.Ciphertext == nil:
			return nil, fmt.Errorf("%w: %w", ErrNoSealer, err)
		case errors.Is(err, ErrKeyRetired) && m.Encrypt && attempt < maxSealAttempts:
			// Sealed again below with the conversation's newest key.
		default:
			return res, err
		}
	}
}

// sendOnce is one try of Send.
func (o *Outbox) sendOnce(ctx context.Context, b Beginner, m Message) (*Result, error) {
	q, ok := b.(Querier)
	if m.Encrypt && !ok {
		return nil, fmt.Errorf("outbox: sealing a message needs a Beginner that also runs queries (a pool, connection or transaction), got %T", b)
	}
	// Validate before taking a connection: bad input costs no round trip.
	v, err := o.prepare(ctx, q, m)
	if err != nil {
		return nil, err
	}
	tx, ins, err := o.begin(ctx, b, &v)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	res, err := o.insertJobs(ctx, tx, v, ins)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("outbox: committing: %w", err)
	}
	return res, nil
}

// begin starts Send's transaction and stores the message in it. For a
// plaintext message on a pool or on a connection outside any transaction
// BEGIN travels with the insert (db.BeginInsertMessage); otherwise it is
// b.Begin, then insertMessage. On error the transaction is already over.
func (o *Outbox) begin(ctx context.Context, b Beginner, v *validated) (pgx.Tx, db.InsertedMessage, error) {
	var q db.BatchSender
	switch b := b.(type) {
	case *pgxpool.Pool:
		q = b
	case *pgx.Conn:
		if b.PgConn().TxStatus() == 'I' {
			q = b
		}
	}
	if q != nil && v.row.KeyID == nil && len(v.attachmentIDs) == 0 {
		tx, ins, err := db.BeginInsertMessage(ctx, q, v.row)
		if err != nil {
			return nil, db.InsertedMessage{}, insertRowError(v.row, err)
		}
		return tx, ins, nil
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return nil, db.InsertedMessage{}, fmt.Errorf("outbox: beginning transaction: %w", err)
	}
	ins, err := o.insertMessage(ctx, tx, v)
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, db.InsertedMessage{}, err
	}
	return tx, ins, nil
}

// prepare seals m when it asks for it (through q), then validates it.
func (o *Outbox) prepare(ctx context.Context, q Querier, m Message) (validated, error) {
	m, err := o.seal(ctx, q, m)
	if err != nil {
		return validated{}, err
	}
	return o.validate(m)
}

// seal returns m with its Content sealed for its id when m.Encrypt asks
// for it (the plaintext checked first, an id given when it has none),
// reading or creating the conversation's data key through q; m unchanged
// otherwise. ErrNoSealer without Config.Sealer.
func (o *Outbox) seal(ctx context.Context, q Querier, m Message) (Message, error) {
	if !m.Encrypt {
		return m, nil
	}
	if m.Ciphertext != nil || m.KeyID != "" {
		return m, validation.Errorf("ciphertext", "must be empty when the outbox is asked to seal the content (Encrypt)")
	}
	// Everything else is checked before sealing, which may create the
	// conversation's first key: bad input writes nothing.
	plain := m
	plain.Encrypt = false
	if _, err := o.validate(plain); err != nil {
		return m, err
	}
	if o.sealer == nil {
		return m, ErrNoSealer
	}
	if m.ID == uuid.Nil {
		var err error
		if m.ID, err = uuid.NewV7(); err != nil {
			return m, fmt.Errorf("outbox: generating message id: %w", err)
		}
	}
	sealed, label, err := o.sealer.Seal(ctx, q, m.ConversationID, m.ID, m.Content)
	if err != nil {
		return m, fmt.Errorf("outbox: sealing message: %w", err)
	}
	m.Ciphertext, m.KeyID, m.Content, m.Encrypt = sealed, label, "", false
	return m, nil
}
