package adminapi

import (
	"errors"
	"io"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/httperr"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

// cryptoJob is the answer to an encrypt or export request.
type cryptoJob struct {
	JobID          int64     `json:"job_id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Operation      string    `json:"operation"`
}

func conversationParam(c echo.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil || id == uuid.Nil {
		return uuid.Nil, validation.Errorf("id", "must be a conversation id (UUID)")
	}
	return id, nil
}

// encryptConversation switches a conversation to encrypted and enqueues
// the job that seals its history, in one transaction (operators only, as
// every POST).
func (s *Server) encryptConversation(c echo.Context) error {
	id, err := conversationParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ob, err := outbox.New(s.river, outbox.Config{})
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	jobID, err := ob.EncryptConversationTx(ctx, tx, id)
	if errors.Is(err, db.ErrNotFound) {
		return newError(http.StatusNotFound, "conversation_not_found", "no live conversation "+id.String())
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	s.audit(c, "encrypt", slogJob(jobID), slogString("conversation_id", id.String()))
	return c.JSON(http.StatusAccepted, cryptoJob{JobID: jobID, ConversationID: id, Operation: jobs.CryptoOpEncrypt})
}

// exportConversation enqueues a decrypt job: the conversation in clear,
// written by the runner to its EXPORT_DIR. The body names whom the export
// is for: {"requested_by": "<uuid>"}.
func (s *Server) exportConversation(c echo.Context) error {
	id, err := conversationParam(c)
	if err != nil {
		return err
	}
	var body struct {
		RequestedBy string `json:"requested_by"`
	}
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	by, err := uuid.Parse(body.RequestedBy)
	if err != nil || by == uuid.Nil {
		return validation.Errorf("requested_by", "must be the UUID of the person the export is for")
	}
	ctx := c.Request().Context()
	exists, err := db.ConversationExists(ctx, s.pool, id)
	if err != nil {
		return err
	}
	if !exists {
		return newError(http.StatusNotFound, "conversation_not_found", "no conversation "+id.String())
	}
	res, err := s.river.Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpDecrypt, ConversationID: id, RequestedBy: by}, nil)
	if err != nil {
		return err
	}
	s.audit(c, "export", slogJob(res.Job.ID), slogString("conversation_id", id.String()), slogString("requested_by", by.String()))
	return c.JSON(http.StatusAccepted, cryptoJob{JobID: res.Job.ID, ConversationID: id, Operation: jobs.CryptoOpDecrypt})
}

// maxBodyBytes bounds an admin request body.
const maxBodyBytes = 64 << 10

// decodeBody reads one JSON object of at most maxBodyBytes into v.
func decodeBody(c echo.Context, v any) error {
	if err := httperr.CheckContentType(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBodyBytes+1))
	if err != nil {
		return newError(http.StatusBadRequest, "bad_body", "reading the body: "+err.Error())
	}
	if len(raw) > maxBodyBytes {
		return newError(http.StatusRequestEntityTooLarge, "body_too_large", "body is over 64 KiB")
	}
	return httperr.DecodeJSON(raw, v)
}
