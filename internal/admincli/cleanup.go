package admincli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

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
	asJSON := fs.Bool("json", false, "print JSON")
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
	c, err := openRiver(ctx, getenv, stdout, stderr, *asJSON)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.client.Insert(ctx, a, nil)
	if err != nil {
		return err
	}
	c.audit.Info("audit", slog.String("action", "cleanup"), slog.Int64("job_id", res.Job.ID), slog.String("type", a.Type), slog.Bool("dry_run", a.DryRun))
	c.enqueued([]int64{res.Job.ID}, fmt.Sprintf("enqueued cleanup-messages job %d (%s, dry run: %v)", res.Job.ID, a.Type, a.DryRun), *wait)
	if !*wait {
		return nil
	}
	return c.waitJob(ctx, res.Job.ID, *timeout)
}
