package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// SyncSearchEntry brings message id's search entry in line with the
// message (written for a live plaintext message, removed otherwise), with
// text-search configuration language (e.g. "simple", "english").
func SyncSearchEntry(ctx context.Context, q Querier, id uuid.UUID, language string) error {
	_, err := dbsqlc.New(q).SyncSearchEntry(ctx, dbsqlc.SyncSearchEntryParams{Language: language, MessageID: id})
	return translate("syncing search entry", err)
}

// ValidSearchLanguage reports whether language names a text-search
// configuration of the database (such as "simple" or "english").
func ValidSearchLanguage(ctx context.Context, q Querier, language string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = $1)", language).Scan(&ok)
	return ok, translate("checking search language", err)
}

// RequireSearchLanguage is ValidSearchLanguage as an error naming
// SEARCH_LANGUAGE, for binaries to check at start.
func RequireSearchLanguage(ctx context.Context, q Querier, language string) error {
	ok, err := ValidSearchLanguage(ctx, q, language)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("SEARCH_LANGUAGE: %q is not a text-search configuration of the database (try simple or english)", language)
	}
	return nil
}

// SearchHit is one search result.
type SearchHit struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	Seq            int64
	SenderID       uuid.UUID
	CreatedAt      time.Time
	// Snippet is HTML: the content escaped, matches wrapped in <mark>.
	Snippet string
	Rank    float32
}

// SearchCursor is the position after the last hit of a page.
type SearchCursor struct {
	Rank float32
	ID   uuid.UUID
}

// SearchMessages returns up to limit hits of query (web-search syntax:
// words, "quoted phrases", or, -not) among user's conversations (only
// conversation when not nil), best first, after cursor when not nil.
func SearchMessages(ctx context.Context, q Querier, user uuid.UUID, query, language string, conversation *uuid.UUID, cursor *SearchCursor, limit int) ([]SearchHit, error) {
	p := dbsqlc.SearchMessagesParams{
		Language: language, Query: query, UserID: user, ConversationID: conversation, MaxRows: int32(limit),
	}
	if cursor != nil {
		p.After, p.AfterRank, p.AfterID = true, cursor.Rank, cursor.ID
	}
	rows, err := dbsqlc.New(q).SearchMessages(ctx, p)
	if err != nil {
		return nil, translate("searching messages", err)
	}
	out := make([]SearchHit, len(rows))
	for i, r := range rows {
		out[i] = SearchHit{ID: r.ID, ConversationID: r.ConversationID, Seq: r.Seq, SenderID: r.SenderID,
			CreatedAt: r.CreatedAt, Snippet: r.Snippet, Rank: r.Rank}
	}
	return out, nil
}

// EditMessage replaces the content of sender's live plaintext message id
// and returns its conversation and seq, or ErrNotFound.
func EditMessage(ctx context.Context, q Querier, id, sender uuid.UUID, content string) (uuid.UUID, int64, error) {
	r, err := dbsqlc.New(q).EditMessage(ctx, dbsqlc.EditMessageParams{ID: id, SenderID: sender, Content: &content})
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, 0, ErrNotFound
	}
	return r.ConversationID, r.Seq, translate("editing message", err)
}

// SoftDeleteMessage marks sender's message id deleted and returns its
// conversation and seq, or ErrNotFound.
func SoftDeleteMessage(ctx context.Context, q Querier, id, sender uuid.UUID) (uuid.UUID, int64, error) {
	r, err := dbsqlc.New(q).SoftDeleteMessage(ctx, dbsqlc.SoftDeleteMessageParams{ID: id, SenderID: sender})
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, 0, ErrNotFound
	}
	return r.ConversationID, r.Seq, translate("deleting message", err)
}

// IndexBacklog is one step of the index-pending sweep: it takes up to
// batch messages from search_backlog, writes the search entries of those
// still live and plaintext (with text-search configuration language),
// removes the others' entries, and deletes the backlog rows, in one
// statement. It returns how many rows it took and how many entries it
// wrote; taken < batch means the backlog is empty, as far as this
// statement could see past rows other sweeps hold.
func IndexBacklog(ctx context.Context, q Querier, language string, batch int) (taken, indexed int, err error) {
	row, err := dbsqlc.New(q).IndexBacklog(ctx, dbsqlc.IndexBacklogParams{BatchSize: int32(batch), Language: language})
	if err != nil {
		return 0, 0, translate("indexing the search backlog", err)
	}
	return int(row.Taken), int(row.Indexed), nil
}
