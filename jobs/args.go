package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/validation"
)

// Job kinds, as in the earlier design.
const (
	KindSendMessage          = "send-message"
	KindDeliveryConfirmation = "delivery-confirmation"
	KindSendNotification     = "send-notification"
	KindIndexMessage         = "index-message"
	KindEncryptDecrypt       = "encrypt-decrypt"
	KindBatchSend            = "batch-send"
	KindCleanupMessages      = "cleanup-messages"
	// KindReleaseScheduled is internal to scheduled messages: it turns a
	// held message into a real one when it is due.
	KindReleaseScheduled = "release-scheduled-message"
	// KindJobHistory is periodic maintenance: hourly job_stats rollups and
	// the failed-jobs archive.
	KindJobHistory = "job-history"
	// KindDeliverPending is the periodic delivery backstop of messages
	// written without a send-message job (outbox.Message.CallerPublishes):
	// it publishes whatever is still pending after the backstop delay.
	KindDeliverPending = "deliver-pending"
	// KindIndexPending is the periodic search indexing of new plaintext
	// messages (the search_backlog table), hundreds per statement.
	KindIndexPending = "index-pending"
)

// Args is implemented by every job args type in this package.
type Args interface {
	river.JobArgs
	river.JobArgsWithInsertOpts
	// Validate returns a *validation.Error naming the first invalid field.
	Validate() error
}

// KindSpec is a kind's queue and defaults.
type KindSpec struct {
	Kind        string
	Queue       string
	MaxAttempts int
	Priority    Priority
}

// Kinds returns every kind with its queue, max attempts and default
// priority: the design's seven in its table order, then
// release-scheduled-message, job-history, deliver-pending and
// index-pending.
func Kinds() []KindSpec {
	all := []Args{
		SendMessageArgs{}, DeliveryConfirmationArgs{}, SendNotificationArgs{},
		IndexMessageArgs{}, EncryptDecryptArgs{}, BatchSendArgs{}, CleanupMessagesArgs{},
		ReleaseScheduledArgs{}, JobHistoryArgs{}, DeliverPendingArgs{}, IndexPendingArgs{},
	}
	specs := make([]KindSpec, 0, len(all))
	for _, a := range all {
		o := a.InsertOpts()
		specs = append(specs, KindSpec{Kind: a.Kind(), Queue: o.Queue, MaxAttempts: o.MaxAttempts, Priority: Priority(o.Priority)})
	}
	return specs
}

// validateOnInsert makes River reject invalid args on every insert path
// (Insert, InsertTx, InsertMany, InsertManyFast) before anything is written.
type validateOnInsert struct{ river.HookDefaults }

func (validateOnInsert) InsertBegin(_ context.Context, params *rivertype.JobInsertParams) error {
	a, ok := params.Args.(Args)
	if !ok {
		return nil
	}
	if err := a.Validate(); err != nil {
		return fmt.Errorf("invalid %s args: %w", params.Kind, err)
	}
	return nil
}

var _ rivertype.HookInsertBegin = &validateOnInsert{}

func hooks() []rivertype.Hook { return []rivertype.Hook{&validateOnInsert{}} }

func requireID(field string, id uuid.UUID) error {
	if id == uuid.Nil {
		return validation.Errorf(field, "is required (a non-nil UUID)")
	}
	return nil
}

func oneOf(field, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return validation.Errorf(field, "must be one of %v, got %q", allowed, value)
}

// SendMessageArgs asks for a stored message to be delivered: marked sent and
// published to its recipient.
type SendMessageArgs struct {
	MessageID uuid.UUID `json:"message_id"`
}

// Kind implements river.JobArgs.
func (SendMessageArgs) Kind() string { return KindSendMessage }

// RedoneIfLost lists the kinds whose writes a later run redoes by itself
// if a database crash or failover loses them after the job was recorded
// done: a lost sent mark leaves the message pending for deliver-pending,
// the sweeps' own lost writes leave their work for the next sweep, and
// cleanup's lost deletes for the next cleanup. A runner committing
// asynchronously need not wait for their writes to be durable.
func RedoneIfLost() []string {
	return []string{KindSendMessage, KindDeliverPending, KindIndexPending, KindCleanupMessages}
}

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SendMessageArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageDelivery, MaxAttempts: 5, Priority: int(PriorityHigh)}
}

// Hooks makes River validate the args on insert.
func (SendMessageArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a SendMessageArgs) Validate() error { return requireID("message_id", a.MessageID) }

// Receipt statuses a recipient can confirm.
const (
	ReceiptDelivered = "delivered"
	ReceiptRead      = "read"
)

// DeliveryConfirmationArgs records a recipient's delivered or read receipt.
type DeliveryConfirmationArgs struct {
	MessageID uuid.UUID `json:"message_id"`
	// UserID is the user confirming: the message's recipient.
	UserID uuid.UUID `json:"user_id"`
	// Status is "delivered" or "read" (read implies delivered).
	Status string `json:"status"`
	// At is when the client confirmed.
	At time.Time `json:"at"`
}

// Kind implements river.JobArgs.
func (DeliveryConfirmationArgs) Kind() string { return KindDeliveryConfirmation }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (DeliveryConfirmationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageDelivery, MaxAttempts: 5, Priority: int(PriorityHigh)}
}

// Hooks makes River validate the args on insert.
func (DeliveryConfirmationArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a DeliveryConfirmationArgs) Validate() error {
	if err := requireID("message_id", a.MessageID); err != nil {
		return err
	}
	if err := requireID("user_id", a.UserID); err != nil {
		return err
	}
	if err := oneOf("status", a.Status, ReceiptDelivered, ReceiptRead); err != nil {
		return err
	}
	if a.At.IsZero() {
		return validation.Errorf("at", "is required")
	}
	return nil
}

// Notification channels.
const (
	ChannelPush  = "push"
	ChannelEmail = "email"
	ChannelSMS   = "sms"
	ChannelInApp = "in_app"
)

// SendNotificationArgs asks for a user to be notified about a message on
// their preferred channels (or on Channels, when set). Without a
// RecipientID it is a group message's: every member who could see it,
// apart from its sender, is notified, each on their own channels.
type SendNotificationArgs struct {
	MessageID   uuid.UUID `json:"message_id"`
	RecipientID uuid.UUID `json:"recipient_id,omitzero"`
	// Type selects the template; "new_message" when empty.
	Type string `json:"type,omitempty"`
	// Channels overrides the recipient's preferences when non-empty.
	Channels []string `json:"channels,omitempty"`
}

// Kind implements river.JobArgs.
func (SendNotificationArgs) Kind() string { return KindSendNotification }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SendNotificationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageNotification, MaxAttempts: 3, Priority: int(PriorityNormal)}
}

// Hooks makes River validate the args on insert.
func (SendNotificationArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a SendNotificationArgs) Validate() error {
	if err := requireID("message_id", a.MessageID); err != nil {
		return err
	}
	if len(a.Type) > 64 || strings.ContainsRune(a.Type, 0) {
		return validation.Errorf("type", "must be at most 64 characters, without NUL (args are stored as jsonb)")
	}
	seen := map[string]bool{}
	for i, c := range a.Channels {
		field := fmt.Sprintf("channels[%d]", i)
		if err := oneOf(field, c, ChannelPush, ChannelEmail, ChannelSMS, ChannelInApp); err != nil {
			return err
		}
		if seen[c] {
			return validation.Errorf(field, "repeats %q", c)
		}
		seen[c] = true
	}
	return nil
}

// Index operations.
const (
	IndexOpIndex  = "index"
	IndexOpUpdate = "update"
	IndexOpDelete = "delete"
)

// IndexMessageArgs asks for a message's search index entry to be written,
// refreshed after an edit, or removed.
type IndexMessageArgs struct {
	MessageID uuid.UUID `json:"message_id"`
	Operation string    `json:"operation"`
}

// Kind implements river.JobArgs.
func (IndexMessageArgs) Kind() string { return KindIndexMessage }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (IndexMessageArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageIndexing, MaxAttempts: 3, Priority: int(PriorityLow)}
}

// Hooks makes River validate the args on insert.
func (IndexMessageArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a IndexMessageArgs) Validate() error {
	if err := requireID("message_id", a.MessageID); err != nil {
		return err
	}
	return oneOf("operation", a.Operation, IndexOpIndex, IndexOpUpdate, IndexOpDelete)
}

// Encryption operations.
const (
	CryptoOpEncrypt = "encrypt"
	CryptoOpRotate  = "rotate"
	CryptoOpDecrypt = "decrypt"
)

// EncryptDecryptArgs asks for bulk cryptographic work on one conversation's
// stored messages: encrypt its plaintext history, rotate its data key, or
// decrypt it into an authorised export. Keys never travel in args: the
// worker reads them from its keyring.
type EncryptDecryptArgs struct {
	Operation      string    `json:"operation"`
	ConversationID uuid.UUID `json:"conversation_id"`
	// ReencryptContent, for rotate, also re-seals content under a new data
	// key instead of only re-wrapping the existing one.
	ReencryptContent bool `json:"reencrypt_content,omitempty"`
	// RequestedBy, for decrypt, is the operator or participant who asked.
	RequestedBy uuid.UUID `json:"requested_by,omitempty"`
}

// Kind implements river.JobArgs.
func (EncryptDecryptArgs) Kind() string { return KindEncryptDecrypt }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (EncryptDecryptArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageEncryption, MaxAttempts: 3, Priority: int(PriorityNormal)}
}

// Hooks makes River validate the args on insert.
func (EncryptDecryptArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a EncryptDecryptArgs) Validate() error {
	if err := oneOf("operation", a.Operation, CryptoOpEncrypt, CryptoOpRotate, CryptoOpDecrypt); err != nil {
		return err
	}
	if err := requireID("conversation_id", a.ConversationID); err != nil {
		return err
	}
	if a.ReencryptContent && a.Operation != CryptoOpRotate {
		return validation.Errorf("reencrypt_content", "applies only to operation %q", CryptoOpRotate)
	}
	if a.Operation == CryptoOpDecrypt {
		return requireID("requested_by", a.RequestedBy)
	}
	return nil
}

// BatchSendArgs asks for a stored broadcast to be sent, a chunk at a time.
// Its recipients live in the batch_recipients table, not in the args.
type BatchSendArgs struct {
	BatchID uuid.UUID `json:"batch_id"`
}

// Kind implements river.JobArgs.
func (BatchSendArgs) Kind() string { return KindBatchSend }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (BatchSendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueBatchMessageSending, MaxAttempts: 3, Priority: int(PriorityNormal)}
}

// Hooks makes River validate the args on insert.
func (BatchSendArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a BatchSendArgs) Validate() error { return requireID("batch_id", a.BatchID) }

// Cleanup types.
const (
	CleanupOldMessages          = "old_messages"
	CleanupDeletedConversations = "deleted_conversations"
	CleanupExpiredAttachments   = "expired_attachments"
)

// Cleanup limits.
const (
	DefaultCleanupBatchSize = 1000
	MaxCleanupBatchSize     = 50000
	MaxRetentionDays        = 36500
)

// CleanupMessagesArgs asks for one type of cleanup.
type CleanupMessagesArgs struct {
	Type string `json:"type"`
	// RetentionDays, for old_messages, keeps messages younger than this.
	RetentionDays int `json:"retention_days,omitempty"`
	// BatchSize is the number of rows deleted per short transaction;
	// DefaultCleanupBatchSize when zero.
	BatchSize int `json:"batch_size,omitempty"`
	// DryRun reports counts and deletes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// Kind implements river.JobArgs.
func (CleanupMessagesArgs) Kind() string { return KindCleanupMessages }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (CleanupMessagesArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageCleanup, MaxAttempts: 2, Priority: int(PriorityLow)}
}

// Hooks makes River validate the args on insert.
func (CleanupMessagesArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a CleanupMessagesArgs) Validate() error {
	if err := oneOf("type", a.Type, CleanupOldMessages, CleanupDeletedConversations, CleanupExpiredAttachments); err != nil {
		return err
	}
	switch {
	case a.Type == CleanupOldMessages && (a.RetentionDays < 1 || a.RetentionDays > MaxRetentionDays):
		return validation.Errorf("retention_days", "must be between 1 and %d for %s, got %d", MaxRetentionDays, CleanupOldMessages, a.RetentionDays)
	case a.Type != CleanupOldMessages && a.RetentionDays != 0:
		return validation.Errorf("retention_days", "applies only to type %s", CleanupOldMessages)
	case a.BatchSize < 0 || a.BatchSize > MaxCleanupBatchSize:
		return validation.Errorf("batch_size", "must be between 1 and %d (0 for the default %d), got %d", MaxCleanupBatchSize, DefaultCleanupBatchSize, a.BatchSize)
	}
	return nil
}

// ReleaseScheduledArgs asks for a scheduled message to be released: written
// as a real message, with its seq and jobs, when it is due. Inserted with
// ScheduledAt set to the message's send time.
type ReleaseScheduledArgs struct {
	ScheduledID uuid.UUID `json:"scheduled_id"`
}

// Kind implements river.JobArgs.
func (ReleaseScheduledArgs) Kind() string { return KindReleaseScheduled }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ReleaseScheduledArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageDelivery, MaxAttempts: 5, Priority: int(PriorityHigh)}
}

// Hooks makes River validate the args on insert.
func (ReleaseScheduledArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a ReleaseScheduledArgs) Validate() error { return requireID("scheduled_id", a.ScheduledID) }

// Job-history defaults.
const (
	DefaultHistoryHours         = 2
	DefaultArchiveRetentionDays = 30
	// DefaultHistoryInterval is how often the runner schedules job-history
	// by default (JOB_HISTORY_INTERVAL).
	DefaultHistoryInterval = 5 * time.Minute
)

// JobHistoryArgs asks for the job_stats rollup of the last Hours hours
// (the current one included) and for discarded jobs to be archived, with
// archived failures older than ArchiveRetentionDays deleted.
type JobHistoryArgs struct {
	Hours                int `json:"hours"`
	ArchiveRetentionDays int `json:"archive_retention_days"`
}

// Kind implements river.JobArgs.
func (JobHistoryArgs) Kind() string { return KindJobHistory }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (JobHistoryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageCleanup, MaxAttempts: 2, Priority: int(PriorityLow)}
}

// Hooks makes River validate the args on insert.
func (JobHistoryArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a JobHistoryArgs) Validate() error {
	if a.Hours < 1 || a.Hours > 168 {
		return validation.Errorf("hours", "must be between 1 and 168, got %d", a.Hours)
	}
	if a.ArchiveRetentionDays < 1 || a.ArchiveRetentionDays > MaxRetentionDays {
		return validation.Errorf("archive_retention_days", "must be between 1 and %d, got %d", MaxRetentionDays, a.ArchiveRetentionDays)
	}
	return nil
}

// Deliver-pending limits.
const (
	// DefaultDeliverPendingBatch is DeliverPendingArgs.BatchSize's usual
	// value: messages published per Redis round trip.
	DefaultDeliverPendingBatch = 500
	// MaxDeliverPendingBatch bounds DeliverPendingArgs.BatchSize.
	MaxDeliverPendingBatch = 10_000
	// MaxDeliveryBackstop bounds DeliverPendingArgs.OlderThanMS.
	MaxDeliveryBackstop = time.Hour
	// DefaultDeliverySweep is how often the runner schedules
	// deliver-pending (DELIVERY_SWEEP_INTERVAL).
	DefaultDeliverySweep = time.Second
)

// DeliverPendingPeriodic is the periodic deliver-pending job: every
// interval (and at start), for messages pending longer than olderThan.
// Unique while one waits or runs, so a slow sweep is not joined by a
// second one publishing the same messages.
func DeliverPendingPeriodic(every, olderThan time.Duration) *river.PeriodicJob {
	return sweepPeriodic(every, DeliverPendingArgs{OlderThanMS: olderThan.Milliseconds(), BatchSize: DefaultDeliverPendingBatch})
}

// sweepPeriodic schedules args every interval (and at start), unique
// while one waits or runs: a sweep is not joined by a second one.
func sweepPeriodic(every time.Duration, args river.JobArgs) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) {
			return args, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
				rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
				rivertype.JobStateRunning, rivertype.JobStateScheduled,
			}}}
		},
		&river.PeriodicJobOpts{RunOnStart: true})
}

// DeliverPendingArgs asks for the messages still pending OlderThanMS
// milliseconds after they were written to be published and marked sent,
// BatchSize at a time, oldest first, until none is left.
type DeliverPendingArgs struct {
	OlderThanMS int64 `json:"older_than_ms"`
	BatchSize   int   `json:"batch_size"`
}

// Kind implements river.JobArgs.
func (DeliverPendingArgs) Kind() string { return KindDeliverPending }

// InsertOpts implements river.JobArgsWithInsertOpts. One attempt: the
// next run, a second later, is the retry.
func (DeliverPendingArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageDelivery, MaxAttempts: 1, Priority: int(PriorityHigh)}
}

// Hooks makes River validate the args on insert.
func (DeliverPendingArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a DeliverPendingArgs) Validate() error {
	if a.OlderThanMS < 1 || a.OlderThanMS > MaxDeliveryBackstop.Milliseconds() {
		return validation.Errorf("older_than_ms", "must be between 1 and %d, got %d", MaxDeliveryBackstop.Milliseconds(), a.OlderThanMS)
	}
	if a.BatchSize < 1 || a.BatchSize > MaxDeliverPendingBatch {
		return validation.Errorf("batch_size", "must be between 1 and %d, got %d", MaxDeliverPendingBatch, a.BatchSize)
	}
	return nil
}

// Index-pending limits.
const (
	// DefaultIndexPendingBatch is IndexPendingArgs.BatchSize's usual
	// value: messages indexed per statement.
	DefaultIndexPendingBatch = 500
	// MaxIndexPendingBatch bounds IndexPendingArgs.BatchSize.
	MaxIndexPendingBatch = 10_000
	// DefaultIndexSweep is how often the runner schedules index-pending
	// (INDEX_SWEEP_INTERVAL).
	DefaultIndexSweep = time.Second
)

// IndexPendingPeriodic is the periodic index-pending job: every interval
// (and at start). Unique while one waits or runs; two running at once
// would be harmless (each skips the rows the other holds), only wasteful.
func IndexPendingPeriodic(every time.Duration) *river.PeriodicJob {
	return sweepPeriodic(every, IndexPendingArgs{BatchSize: DefaultIndexPendingBatch})
}

// IndexPendingArgs asks for the search backlog (new plaintext messages
// without a search entry yet) to be indexed, BatchSize messages per
// statement, until it is empty.
type IndexPendingArgs struct {
	BatchSize int `json:"batch_size"`
}

// Kind implements river.JobArgs.
func (IndexPendingArgs) Kind() string { return KindIndexPending }

// InsertOpts implements river.JobArgsWithInsertOpts. One attempt: the
// next run, a second later, is the retry, and the backlog keeps every
// message a failed run did not index.
func (IndexPendingArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMessageIndexing, MaxAttempts: 1, Priority: int(PriorityLow)}
}

// Hooks makes River validate the args on insert.
func (IndexPendingArgs) Hooks() []rivertype.Hook { return hooks() }

// Validate checks the args.
func (a IndexPendingArgs) Validate() error {
	if a.BatchSize < 1 || a.BatchSize > MaxIndexPendingBatch {
		return validation.Errorf("batch_size", "must be between 1 and %d, got %d", MaxIndexPendingBatch, a.BatchSize)
	}
	return nil
}
