package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

// MaxSearchQueryBytes caps GET /v1/search?q=.
const MaxSearchQueryBytes = 1000

// MaxSearchLimit caps GET /v1/search?limit=.
const MaxSearchLimit = 100

// changeMessage runs change (an edit or a soft delete by the caller) and
// enqueues the matching index-message job in the same transaction, then
// drops the message from the recent cache.
func (s *Server) changeMessage(c echo.Context, op string, change func(ctx context.Context, tx pgx.Tx, id uuid.UUID) (uuid.UUID, int64, error)) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	conv, seq, err := change(ctx, tx, id)
	if errors.Is(err, db.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "no message of yours with this id can be changed (not yours, already deleted, or, for edits, encrypted)")
	}
	if err != nil {
		return err
	}
	if _, err := s.river.InsertTx(ctx, tx, jobs.IndexMessageArgs{MessageID: id, Operation: op}, nil); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if err := s.fanout.Forget(ctx, conv, seq); err != nil {
		s.logger.Warn("could not drop a changed message from the cache", slog.String("message_id", id.String()), slog.String("error", err.Error()))
	}
	if op == jobs.IndexOpDelete {
		return c.NoContent(http.StatusNoContent)
	}
	return c.JSON(http.StatusOK, map[string]any{"id": id, "conversation_id": conv, "seq": seq, "edited": true})
}

func (s *Server) editMessage(c echo.Context) error {
	var req struct {
		Content string `json:"content"`
	}
	if err := readJSON(c, int64(s.cfg.MaxContentBytes)*2+1024, &req); err != nil {
		return err
	}
	if err := outbox.ValidateContent(req.Content, s.cfg.MaxContentBytes); err != nil {
		return err
	}
	user := userOf(c)
	return s.changeMessage(c, jobs.IndexOpUpdate, func(ctx context.Context, tx pgx.Tx, id uuid.UUID) (uuid.UUID, int64, error) {
		return db.EditMessage(ctx, tx, id, user, req.Content)
	})
}

func (s *Server) deleteMessage(c echo.Context) error {
	user := userOf(c)
	return s.changeMessage(c, jobs.IndexOpDelete, func(ctx context.Context, tx pgx.Tx, id uuid.UUID) (uuid.UUID, int64, error) {
		return db.SoftDeleteMessage(ctx, tx, id, user)
	})
}

// searchCursor encodes a page position opaquely.
func encodeSearchCursor(h db.SearchHit) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatFloat(float64(h.Rank), 'g', -1, 32) + "|" + h.ID.String()))
}

func decodeSearchCursor(v string) (*db.SearchCursor, error) {
	bad := validation.Errorf("cursor", "is not a cursor returned by this endpoint")
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, bad
	}
	rank, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return nil, bad
	}
	r, err := strconv.ParseFloat(rank, 32)
	if err != nil {
		return nil, bad
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, bad
	}
	return &db.SearchCursor{Rank: float32(r), ID: u}, nil
}

type searchHit struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	SenderID       uuid.UUID `json:"sender_id"`
	CreatedAt      time.Time `json:"created_at"`
	Snippet        string    `json:"snippet"`
	Rank           float32   `json:"rank"`
}

// searchQuery checks the q of GET /v1/search and returns it trimmed. Any
// query it accepts is one Postgres's websearch_to_tsquery parses (that
// parser takes any text; only invalid UTF-8 and NUL make Postgres refuse
// it), so a search never fails on what the user typed.
func searchQuery(raw string) (string, error) {
	q := strings.TrimSpace(raw)
	switch {
	case q == "":
		return "", validation.Errorf("q", "is required")
	case len(q) > MaxSearchQueryBytes:
		return "", validation.Errorf("q", "is over %d bytes", MaxSearchQueryBytes)
	case !utf8.ValidString(q) || strings.ContainsRune(q, 0):
		return "", validation.Errorf("q", "must be valid UTF-8 without NUL characters")
	}
	return q, nil
}

// lagTolerant returns where to run a read that may miss the last few
// seconds of writes: the read replica while it keeps up, else the pool.
func (s *Server) lagTolerant() db.Querier {
	if s.cfg.Replica != nil {
		return s.cfg.Replica.Reads()
	}
	return s.pool
}

func (s *Server) search(c echo.Context) error {
	q, err := searchQuery(c.QueryParam("q"))
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 20, 1, MaxSearchLimit)
	if err != nil {
		return err
	}
	var conv *uuid.UUID
	if v := c.QueryParam("conversation_id"); v != "" {
		id, err := parseID("conversation_id", v)
		if err != nil {
			return err
		}
		conv = &id
	}
	var cursor *db.SearchCursor
	if v := c.QueryParam("cursor"); v != "" {
		if cursor, err = decodeSearchCursor(v); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	hits, err := db.SearchMessages(ctx, s.lagTolerant(), userOf(c), q, s.cfg.SearchLanguage, conv, cursor, int(limit))
	if err != nil {
		return err
	}
	out := make([]searchHit, len(hits))
	for i, h := range hits {
		out[i] = searchHit(h)
	}
	var next *string
	if len(hits) == int(limit) {
		n := encodeSearchCursor(hits[len(hits)-1])
		next = &n
	}
	return c.JSON(http.StatusOK, map[string]any{"results": out, "next_cursor": next})
}
