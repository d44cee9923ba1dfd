package broadcast

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

// Limits.
const (
	MaxRecipients     = 100_000
	DefaultChunkSize  = 50
	MaxChunkSize      = 1000
	MaxChunkDelay     = time.Hour
	MaxTemplateBytes  = 16 << 10
	maxVariablesBytes = 4 << 10
)

// ErrTooManyRecipients is returned by Create for more than MaxRecipients.
var ErrTooManyRecipients = fmt.Errorf("a broadcast may have at most %d recipients", MaxRecipients)

// ErrNotFound is returned for an unknown broadcast, or one of another sender.
var ErrNotFound = errors.New("broadcast not found")

// Request is a broadcast to create.
type Request struct {
	RecipientIDs []uuid.UUID
	// Content is the text for everyone; or Template, a Go text/template
	// rendered per recipient with Variables[recipient] (missing keys are
	// errors for that recipient).
	Content    string
	Template   string
	Variables  map[uuid.UUID]map[string]string
	ChunkSize  int
	ChunkDelay time.Duration
	Priority   string
}

// Service creates and runs broadcasts. It is safe for concurrent use.
type Service struct {
	pool   *pgxpool.Pool
	outbox *outbox.Outbox
	river  *river.Client[pgx.Tx]
	opts   Options
}

// Deliverer publishes stored messages and marks them sent, returning how
// many it published (package delivery's Deliverer).
type Deliverer interface {
	DeliverMany(ctx context.Context, ms []db.Message) (int, error)
}

// Options are how chunks are delivered.
type Options struct {
	// Deliverer, when set, publishes each chunk's messages right after
	// the chunk commits and marks them sent (one Redis round trip and one
	// statement per chunk), as the gateway does for a single message: they
	// get no send-message jobs (outbox.Message.CallerPublishes), and the
	// runner's deliver-pending sweep is the backstop. Without it each
	// message gets a send-message job, which delivers it.
	Deliverer Deliverer
}

// New returns a Service; client may be insert-only. Each recipient's
// message goes to the direct conversation of sender and recipient
// (outbox.DirectConversationID).
func New(pool *pgxpool.Pool, ob *outbox.Outbox, client *river.Client[pgx.Tx], opts Options) *Service {
	return &Service{pool: pool, outbox: ob, river: client, opts: opts}
}

// textSafe reports whether s can be stored in Postgres text and jsonb:
// valid UTF-8 without NUL.
func textSafe(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func parseTemplate(text string) (*template.Template, error) {
	return template.New("broadcast").Option("missingkey=error").Parse(text)
}

// Create validates req, stores the broadcast and its recipients, and
// enqueues its batch-send job, in one transaction.
func (s *Service) Create(ctx context.Context, sender uuid.UUID, req Request) (db.Batch, error) {
	req.ChunkSize = cmp.Or(req.ChunkSize, DefaultChunkSize)
	switch {
	case len(req.RecipientIDs) == 0:
		return db.Batch{}, validation.Errorf("recipient_ids", "must list at least one recipient")
	case len(req.RecipientIDs) > MaxRecipients:
		return db.Batch{}, ErrTooManyRecipients
	case (req.Content == "") == (req.Template == ""):
		return db.Batch{}, validation.Errorf("content", "give content or template, not both and not neither")
	case req.ChunkSize < 1 || req.ChunkSize > MaxChunkSize:
		return db.Batch{}, validation.Errorf("chunk_size", "must be between 1 and %d", MaxChunkSize)
	case req.ChunkDelay < 0 || req.ChunkDelay > MaxChunkDelay:
		return db.Batch{}, validation.Errorf("chunk_delay_ms", "must be between 0 and %d", MaxChunkDelay.Milliseconds())
	case len(req.Template) > MaxTemplateBytes:
		return db.Batch{}, validation.Errorf("template", "is over %d bytes", MaxTemplateBytes)
	case !textSafe(req.Template):
		return db.Batch{}, validation.Errorf("template", "must be valid UTF-8 without NUL characters")
	}
	prio := jobs.PriorityNormal
	if req.Priority != "" {
		p, err := jobs.ParsePriority(req.Priority)
		if err != nil {
			return db.Batch{}, validation.Errorf("priority", "%v", err)
		}
		prio = p
	}
	if req.Template != "" {
		if _, err := parseTemplate(req.Template); err != nil {
			return db.Batch{}, validation.Errorf("template", "does not parse: %v", err)
		}
	} else if err := s.outbox.CheckContent(req.Content); err != nil {
		return db.Batch{}, err
	}
	recipients := make([]db.BatchRecipient, len(req.RecipientIDs))
	seen := make(map[uuid.UUID]bool, len(req.RecipientIDs))
	for i, id := range req.RecipientIDs {
		switch {
		case id == uuid.Nil:
			return db.Batch{}, validation.Errorf(fmt.Sprintf("recipient_ids[%d]", i), "is not a user id")
		case id == sender:
			return db.Batch{}, validation.Errorf(fmt.Sprintf("recipient_ids[%d]", i), "is the sender")
		case seen[id]:
			return db.Batch{}, validation.Errorf(fmt.Sprintf("recipient_ids[%d]", i), "repeats %s", id)
		}
		seen[id] = true
		vars := []byte("{}")
		if v, ok := req.Variables[id]; ok {
			for k, val := range v {
				if !textSafe(k) || !textSafe(val) {
					return db.Batch{}, validation.Errorf("variables", "for %s must be valid UTF-8 without NUL characters", id)
				}
			}
			b, err := json.Marshal(v)
			if err != nil || len(b) > maxVariablesBytes {
				return db.Batch{}, validation.Errorf("variables", "for %s must be a small object of strings", id)
			}
			vars = b
		}
		recipients[i] = db.BatchRecipient{Position: i + 1, RecipientID: id, Variables: vars}
	}
	for id := range req.Variables {
		if !seen[id] {
			return db.Batch{}, validation.Errorf("variables", "names %s, who is not a recipient", id)
		}
	}
	b := db.Batch{ID: uuid.Must(uuid.NewV7()), SenderID: sender, Priority: int(prio), ChunkSize: req.ChunkSize, ChunkDelay: req.ChunkDelay}
	if req.Template != "" {
		b.Template = &req.Template
	} else {
		b.Content = &req.Content
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return db.Batch{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	created, err := db.CreateBatch(ctx, tx, b, recipients)
	if err != nil {
		return db.Batch{}, err
	}
	if _, err := s.river.InsertTx(ctx, tx, jobs.BatchSendArgs{BatchID: created.ID}, &river.InsertOpts{Priority: int(prio)}); err != nil {
		return db.Batch{}, fmt.Errorf("enqueuing batch-send: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return db.Batch{}, err
	}
	return created, nil
}

// Get returns sender's broadcast id, or ErrNotFound.
func (s *Service) Get(ctx context.Context, sender, id uuid.UUID) (db.Batch, error) {
	b, err := db.GetBatch(ctx, s.pool, id)
	if errors.Is(err, db.ErrNotFound) || (err == nil && b.SenderID != sender) {
		return db.Batch{}, ErrNotFound
	}
	return b, err
}

// Cancel asks sender's broadcast id to stop at its next chunk boundary.
func (s *Service) Cancel(ctx context.Context, sender, id uuid.UUID) (string, error) {
	status, err := db.RequestBatchCancel(ctx, s.pool, id, sender)
	if errors.Is(err, db.ErrNotFound) {
		return "", ErrNotFound
	}
	return status, err
}

// Step is the result of one ProcessChunk.
type Step struct {
	Batch db.Batch
	// Done is true when the broadcast is finished (completed or
	// cancelled) and no chunk is left.
	Done bool
	// Published counts the chunk's messages delivered at once (Options.
	// Deliverer); PublishErr says why that failed, in which case the
	// runner's deliver-pending sweep delivers them.
	Published  int
	PublishErr error
}

// ProcessChunk sends the broadcast's next chunk in one transaction:
// creates each recipient's message (rendering the template), inserts the
// messages' jobs, records each recipient's outcome and advances the cursor.
// It returns Done once nothing is left or a cancel was requested.
func (s *Service) ProcessChunk(ctx context.Context, id uuid.UUID) (Step, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Step{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	b, err := db.LockBatch(ctx, tx, id)
	if err != nil {
		return Step{}, err
	}
	if b.Status == "completed" || b.Status == "cancelled" || b.Status == "failed" {
		return Step{Batch: b, Done: true}, nil
	}
	finish := func(status string) (Step, error) {
		if err := db.FinishBatch(ctx, tx, id, status); err != nil {
			return Step{}, err
		}
		if err := tx.Commit(ctx); err != nil {
			return Step{}, err
		}
		b, err := db.GetBatch(ctx, s.pool, id)
		return Step{Batch: b, Done: true}, err
	}
	if b.CancelAsked {
		return finish("cancelled")
	}
	chunk, err := db.NextBatchChunk(ctx, tx, id, b.Cursor, b.ChunkSize)
	if err != nil {
		return Step{}, err
	}
	if len(chunk) == 0 {
		return finish("completed")
	}

	outcomes, msgs, idx := s.render(b, chunk)
	var stored []db.Message
	if len(msgs) > 0 {
		results, err := s.sendAll(ctx, tx, msgs)
		if err != nil {
			return Step{}, err
		}
		stored = make([]db.Message, 0, len(results))
		for i, r := range results {
			o := &outcomes[idx[i]]
			if r.err != "" {
				o.Error = r.err
				continue
			}
			o.MessageID = r.res.ID
			stored = append(stored, db.Message{
				ID: r.res.ID, ConversationID: r.res.ConversationID, SenderID: msgs[i].SenderID, RecipientID: msgs[i].RecipientID,
				Seq: r.res.Seq, Status: db.MessageStatus(r.res.Status), CreatedAt: r.res.CreatedAt, Content: &msgs[i].Content,
			})
		}
	}
	if err := db.FinishChunk(ctx, tx, id, chunk[len(chunk)-1].Position, outcomes); err != nil {
		return Step{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Step{}, err
	}
	var step Step
	if s.opts.Deliverer != nil {
		step.Published, step.PublishErr = s.opts.Deliverer.DeliverMany(ctx, stored)
	}
	step.Batch, err = db.GetBatch(ctx, s.pool, id)
	return step, err
}

// render builds each recipient's message; recipients whose template fails
// get an outcome with the error and no message. idx maps msgs to outcomes.
func (s *Service) render(b db.Batch, chunk []db.BatchRecipient) ([]db.RecipientOutcome, []outbox.Message, []int) {
	outcomes := make([]db.RecipientOutcome, len(chunk))
	msgs := make([]outbox.Message, 0, len(chunk))
	idx := make([]int, 0, len(chunk))
	var tmpl *template.Template
	if b.Template != nil {
		tmpl, _ = parseTemplate(*b.Template) // parsed at Create
	}
	for i, r := range chunk {
		outcomes[i].Position = r.Position
		content := ""
		if tmpl != nil {
			vars := map[string]string{}
			_ = json.Unmarshal(r.Variables, &vars)
			var buf bytes.Buffer
			if err := tmpl.Execute(&buf, vars); err != nil {
				outcomes[i].Error = "template: " + err.Error()
				continue
			}
			content = buf.String()
		} else {
			content = *b.Content
		}
		msgs = append(msgs, outbox.Message{
			ID: uuid.Must(uuid.NewV7()), ConversationID: outbox.DirectConversationID(b.SenderID, r.RecipientID), SenderID: b.SenderID,
			RecipientID: r.RecipientID, Content: content, Priority: jobs.Priority(b.Priority).String(),
			CallerPublishes: s.opts.Deliverer != nil,
		})
		idx = append(idx, i)
	}
	return outcomes, msgs, idx
}

type sendResult struct {
	res *outbox.Result
	err string
}

// sendAll sends msgs with one bulk insert; when any of them is refused it
// falls back to one savepoint per message, so only the refused ones fail.
func (s *Service) sendAll(ctx context.Context, tx pgx.Tx, msgs []outbox.Message) ([]sendResult, error) {
	out := make([]sendResult, len(msgs))
	bulk, err := tx.Begin(ctx) // savepoint
	if err != nil {
		return nil, err
	}
	res, err := s.outbox.SendManyTx(ctx, bulk, msgs)
	if err == nil {
		if err := bulk.Commit(ctx); err != nil {
			return nil, err
		}
		for i, r := range res {
			out[i].res = r
		}
		return out, nil
	}
	_ = bulk.Rollback(ctx)
	var ve *validation.Error
	if !errors.Is(err, outbox.ErrNotParticipant) && !errors.Is(err, outbox.ErrEncryptedConversation) && !errors.As(err, &ve) {
		return nil, err
	}
	for i, m := range msgs {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return nil, err
		}
		r, err := s.outbox.SendTx(ctx, sp, m)
		switch {
		case err == nil:
			if err := sp.Commit(ctx); err != nil {
				return nil, err
			}
			out[i].res = r
		case errors.Is(err, outbox.ErrNotParticipant) || errors.Is(err, outbox.ErrEncryptedConversation) || errors.As(err, &ve):
			_ = sp.Rollback(ctx)
			out[i].err = err.Error()
		default:
			_ = sp.Rollback(ctx)
			return nil, err
		}
	}
	return out, nil
}
