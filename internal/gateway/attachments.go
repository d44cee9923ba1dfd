package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
)

// DefaultAttachmentTypes are the content types accepted when
// Config.AttachmentTypes is empty.
var DefaultAttachmentTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}

// postAttachment stores the request body as an attachment of the caller.
// The declared Content-Type must be allowed and must match what the bytes
// look like.
func (s *Server) postAttachment(c echo.Context) error {
	if s.cfg.Attachments == nil {
		return newError(http.StatusNotImplemented, "attachments_disabled", "this gateway has no attachment store (set ATTACHMENTS_DIR)")
	}
	declared := strings.ToLower(strings.TrimSpace(strings.Split(c.Request().Header.Get("Content-Type"), ";")[0]))
	if !slices.Contains(s.cfg.AttachmentTypes, declared) {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_type", Field: "Content-Type",
			Message: fmt.Sprintf("content type %q is not accepted (accepted: %s)", declared, strings.Join(s.cfg.AttachmentTypes, ", "))}
	}
	body := bufio.NewReader(http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.AttachmentMaxBytes))
	head, err := body.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("attachments may be at most %d bytes", s.cfg.AttachmentMaxBytes))
		}
		return newError(http.StatusBadRequest, "bad_body", "could not read the upload")
	}
	if len(head) == 0 {
		return newError(http.StatusBadRequest, "empty", "the upload is empty")
	}
	sniffed := strings.Split(http.DetectContentType(head), ";")[0]
	if sniffed != declared {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "type_mismatch", Field: "Content-Type",
			Message: fmt.Sprintf("the bytes look like %s, not %s", sniffed, declared)}
	}
	user := userOf(c)
	id := uuid.Must(uuid.NewV7())
	key := user.String() + "/" + id.String()
	ctx := c.Request().Context()
	n, err := s.cfg.Attachments.Put(ctx, key, body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("attachments may be at most %d bytes", s.cfg.AttachmentMaxBytes))
		}
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	a, err := db.InsertAttachment(dctx, s.pool, db.Attachment{
		ID: id, OwnerID: user, ContentType: declared, SizeBytes: n, StorageKey: key, ExpiresAt: time.Now().Add(s.cfg.AttachmentTTL),
	})
	if err != nil {
		if derr := s.cfg.Attachments.Delete(context.WithoutCancel(ctx), key); derr != nil {
			s.logger.Warn("could not remove an unrecorded upload", slog.String("error", derr.Error()))
		}
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": a.ID, "content_type": a.ContentType, "size": a.SizeBytes, "expires_at": a.ExpiresAt})
}

// getAttachment serves an attachment to its owner.
func (s *Server) getAttachment(c echo.Context) error {
	if s.cfg.Attachments == nil {
		return newError(http.StatusNotImplemented, "attachments_disabled", "this gateway has no attachment store (set ATTACHMENTS_DIR)")
	}
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	a, err := db.GetAttachment(ctx, s.pool, id)
	if err == nil && !time.Now().After(a.ExpiresAt) {
		var allowed bool
		allowed, err = s.mayRead(ctx, userOf(c), a)
		if err == nil && !allowed {
			err = db.ErrNotFound
		}
	} else if err == nil {
		err = db.ErrNotFound // expired
	}
	if errors.Is(err, db.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "no attachment you may read has this id (or it expired)")
	}
	if err != nil {
		return err
	}
	r, err := s.cfg.Attachments.Open(c.Request().Context(), a.StorageKey)
	if err != nil {
		return newError(http.StatusNotFound, "not_found", "the attachment's file is gone")
	}
	defer r.Close()
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Stream(http.StatusOK, a.ContentType, r)
}

// deleteConversation deletes a conversation for the caller; once every
// participant has, cleanup removes it.
func (s *Server) deleteConversation(c echo.Context) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	forAll, err := db.MarkConversationDeleted(ctx, s.pool, id, userOf(c))
	if errors.Is(err, db.ErrNotFound) {
		return notParticipant()
	}
	if err != nil {
		return err
	}
	// Its messages no longer count as unread for the caller.
	if err := s.fanout.InvalidateUnread(ctx, userOf(c)); err != nil {
		s.logger.Warn("unread counts not invalidated after a conversation delete", slog.String("error", err.Error()))
	}
	return c.JSON(http.StatusOK, map[string]any{"conversation_id": id, "deleted_for_everyone": forAll})
}

// mayRead reports whether user may read attachment a: its owner may, and
// so may whoever may see the message that carries it (its recipient, or a
// member of its group whose window covers it), while that message is not
// deleted and is not hidden from them (a conversation they deleted).
func (s *Server) mayRead(ctx context.Context, user uuid.UUID, a db.Attachment) (bool, error) {
	if a.OwnerID == user {
		return true, nil
	}
	if a.MessageID == nil {
		return false, nil
	}
	m, err := db.GetMessage(ctx, s.pool, *a.MessageID)
	if errors.Is(err, db.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if (!m.IsGroup() && m.RecipientID != user) || m.DeletedAt != nil {
		return false, nil
	}
	vis, err := db.MemberVisibility(ctx, s.pool, m.ConversationID, user)
	if errors.Is(err, db.ErrNotFound) {
		return false, nil // no longer a participant
	}
	return err == nil && vis.Covers(m.Seq), err
}
