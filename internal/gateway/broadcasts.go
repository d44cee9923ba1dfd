package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/broadcast"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/validation"
)

// maxBroadcastBody bounds POST /v1/broadcasts: 100,000 recipient ids with
// room for per-recipient variables.
const maxBroadcastBody = 32 << 20

type broadcastRequest struct {
	RecipientIDs []string                     `json:"recipient_ids"`
	Content      string                       `json:"content"`
	Template     string                       `json:"template"`
	Variables    map[string]map[string]string `json:"variables"`
	ChunkSize    int                          `json:"chunk_size"`
	ChunkDelayMS int64                        `json:"chunk_delay_ms"`
	Priority     string                       `json:"priority"`
}

type broadcastView struct {
	ID           uuid.UUID  `json:"id"`
	Status       string     `json:"status"`
	Total        int        `json:"total"`
	Processed    int        `json:"processed"`
	Failed       int        `json:"failed"`
	Percentage   float64    `json:"percentage"`
	CurrentChunk int        `json:"current_chunk"`
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	Cancelling   bool       `json:"cancelling,omitempty"`
}

func viewBroadcast(b db.Batch) broadcastView {
	return broadcastView{ID: b.ID, Status: b.Status, Total: b.Total, Processed: b.Processed, Failed: b.Failed,
		Percentage: b.Percentage(), CurrentChunk: b.CurrentChunk, CreatedAt: b.CreatedAt, StartedAt: b.StartedAt,
		FinishedAt: b.FinishedAt, Cancelling: b.CancelAsked && (b.Status == "pending" || b.Status == "running")}
}

func (s *Server) postBroadcast(c echo.Context) error {
	var req broadcastRequest
	if err := readJSON(c, maxBroadcastBody, &req); err != nil {
		return err
	}
	// Checked before Create: parsing 100,000 ids is work to skip, and a
	// delay in ms must be bounded before it becomes a Duration (a huge one
	// would overflow into a small, accepted delay).
	if len(req.RecipientIDs) > broadcast.MaxRecipients {
		return newError(http.StatusRequestEntityTooLarge, "too_many_recipients", broadcast.ErrTooManyRecipients.Error())
	}
	if req.ChunkDelayMS < 0 || req.ChunkDelayMS > broadcast.MaxChunkDelay.Milliseconds() {
		return validation.Errorf("chunk_delay_ms", "must be between 0 and %d", broadcast.MaxChunkDelay.Milliseconds())
	}
	in := broadcast.Request{
		Content: req.Content, Template: req.Template, ChunkSize: req.ChunkSize,
		ChunkDelay: time.Duration(req.ChunkDelayMS) * time.Millisecond, Priority: req.Priority,
		RecipientIDs: make([]uuid.UUID, len(req.RecipientIDs)),
	}
	for i, v := range req.RecipientIDs {
		id, err := parseID(fmt.Sprintf("recipient_ids[%d]", i), v)
		if err != nil {
			return err
		}
		in.RecipientIDs[i] = id
	}
	if len(req.Variables) > 0 {
		in.Variables = make(map[uuid.UUID]map[string]string, len(req.Variables))
		for k, v := range req.Variables {
			id, err := uuid.Parse(k)
			if err != nil {
				return validation.Errorf("variables", "key %q is not a recipient id", k)
			}
			in.Variables[id] = v
		}
	}
	// Storing 100,000 recipients takes longer than one message.
	ctx, cancel := context.WithTimeout(c.Request().Context(), 6*s.cfg.DBTimeout)
	defer cancel()
	b, err := s.bcast.Create(ctx, userOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"id": b.ID, "total": b.Total, "status": b.Status})
}

func (s *Server) getBroadcast(c echo.Context) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	b, err := s.bcast.Get(ctx, userOf(c), id)
	if errors.Is(err, broadcast.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "no broadcast of yours has this id")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewBroadcast(b))
}

func (s *Server) cancelBroadcast(c echo.Context) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	status, err := s.bcast.Cancel(ctx, userOf(c), id)
	if errors.Is(err, broadcast.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "no broadcast of yours has this id")
	}
	if err != nil {
		return err
	}
	if status != "pending" && status != "running" {
		return c.JSON(http.StatusOK, map[string]any{"id": id, "status": status, "message": "the broadcast had already finished"})
	}
	return c.JSON(http.StatusAccepted, map[string]any{"id": id, "status": status, "cancelling": true})
}
