package adminapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/validation"
)

func errorsIsNotFound(err error) bool { return errors.Is(err, rivertype.ErrNotFound) }

func slogQueue(q string) slog.Attr      { return slog.String("queue", q) }
func slogInt(k string, v int) slog.Attr { return slog.Int(k, v) }
func slogString(k, v string) slog.Attr  { return slog.String(k, v) }
func slogJob(id int64) slog.Attr        { return slog.Int64("job_id", id) }

func jobID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, validation.Errorf("id", "must be a job id (a positive integer)")
	}
	return id, nil
}

func jobNotFound(id int64) *apiError {
	return newError(http.StatusNotFound, "job_not_found", "no job with id "+strconv.FormatInt(id, 10))
}

func (s *Server) getJob(c echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := s.river.JobGet(c.Request().Context(), id)
	if errorsIsNotFound(err) {
		return jobNotFound(id)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(j))
}

// jobAction runs one mutation on a job and audits it.
func (s *Server) jobAction(c echo.Context, action string, do func(id int64) (*rivertype.JobRow, error)) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := do(id)
	if errorsIsNotFound(err) {
		return jobNotFound(id)
	}
	if err != nil {
		return err
	}
	s.audit(c, action, slogJob(id), slogString("kind", j.Kind), slogQueue(j.Queue))
	return c.JSON(http.StatusOK, viewOf(j))
}

func (s *Server) retryJob(c echo.Context) error {
	return s.jobAction(c, "retry", func(id int64) (*rivertype.JobRow, error) { return s.river.JobRetry(c.Request().Context(), id) })
}

func (s *Server) cancelJob(c echo.Context) error {
	return s.jobAction(c, "cancel", func(id int64) (*rivertype.JobRow, error) { return s.river.JobCancel(c.Request().Context(), id) })
}

func (s *Server) deleteJob(c echo.Context) error {
	return s.jobAction(c, "delete", func(id int64) (*rivertype.JobRow, error) { return s.river.JobDelete(c.Request().Context(), id) })
}
