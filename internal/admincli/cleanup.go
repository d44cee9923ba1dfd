package admincli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/validation"
)

func runCleanup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	typ := fs.String("type", "", "old_messages, deleted_conversations or expired_attachments")
	retention := fs.Int("retention-days", 0, "old_messages: keep messages younger than this")
	batch := fs.Int("batch-size", 0, "rows per transaction (default 1000)")
	dry := fs.Bool("dry-run", false, "count what would be deleted; delete nothing")
	wait := fs.Bool("wait", false, "wait for the job and print its result")
	timeout := fs.Duration("timeout", 15*time.Minute, "with --wait: give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("cleanup: unexpected argument %q", fs.Arg(0))}
	}
	a := jobs.CleanupMessagesArgs{Type: *typ, RetentionDays: *retention, BatchSize: *batch, DryRun: *dry}
	if err := a.Validate(); err != nil {
		var ve *validation.Error
		if errors.As(err, &ve) {
			return &usageError{msg: fmt.Sprintf("cleanup: --%s: %s", map[string]string{"type": "type", "retention_days": "retention-days", "batch_size": "batch-size"}[ve.Field], ve.Problem)}
		}
		return err
	}
	c, err := openRiver(ctx, getenv, stdout, stderr, false)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.client.Insert(ctx, a, nil)
	if err != nil {
		return err
	}
	c.audit.Info("audit", slog.String("action", "cleanup"), slog.Int64("job_id", res.Job.ID), slog.String("type", a.Type), slog.Bool("dry_run", a.DryRun))
	fmt.Fprintf(stdout, "enqueued cleanup-messages job %d (%s, dry run: %v)\n", res.Job.ID, a.Type, a.DryRun)
	if !*wait {
		return nil
	}
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		j, err := c.client.JobGet(ctx, res.Job.ID)
		if err != nil {
			return err
		}
		if j.FinalizedAt != nil {
			var meta struct {
				Output json.RawMessage `json:"output"`
			}
			_ = json.Unmarshal(j.Metadata, &meta)
			fmt.Fprintf(stdout, "job %d %s: %s\n", j.ID, j.State, meta.Output)
			if j.State != rivertype.JobStateCompleted {
				last := ""
				if n := len(j.Errors); n > 0 {
					last = j.Errors[n-1].Error
				}
				return fmt.Errorf("cleanup job %d ended %s: %s", j.ID, j.State, last)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("cleanup job %d did not finish within %s (is a runner running?)", res.Job.ID, *timeout)
}
