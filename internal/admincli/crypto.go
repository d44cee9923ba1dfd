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

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
)

// runEncrypt switches a conversation to encrypted and enqueues the job
// that seals its history, in one transaction.
func runEncrypt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("encrypt", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conv := fs.String("conversation", "", "the conversation to switch to encrypted")
	wait := fs.Bool("wait", false, "wait for the job and print its result")
	timeout := fs.Duration("timeout", 15*time.Minute, "with --wait: give up after this long")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, err := conversationFlag("encrypt", *conv, fs)
	if err != nil {
		return err
	}
	c, err := openRiver(ctx, getenv, stdout, stderr, *asJSON)
	if err != nil {
		return err
	}
	defer c.close()
	ob, err := outbox.New(c.client, outbox.Config{})
	if err != nil {
		return err
	}
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	jobID, err := ob.EncryptConversationTx(ctx, tx, id)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("encrypt: no live conversation %s", id)
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	c.audit.Info("audit", slog.String("action", "encrypt"), slog.Int64("job_id", jobID), slog.String("conversation_id", id.String()))
	c.enqueued([]int64{jobID}, fmt.Sprintf("conversation %s switched to encrypted; enqueued encrypt-decrypt job %d to seal its history", id, jobID), *wait)
	if !*wait {
		return nil
	}
	return c.waitJob(ctx, jobID, *timeout)
}

// runExport enqueues a decrypt job: an export of a conversation, in clear,
// to the runner's EXPORT_DIR.
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conv := fs.String("conversation", "", "the conversation to export")
	by := fs.String("requested-by", "", "the UUID of the person the export is for (recorded in the job and the audit log)")
	wait := fs.Bool("wait", false, "wait for the job and print its result (the file's path and row count)")
	timeout := fs.Duration("timeout", 15*time.Minute, "with --wait: give up after this long")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, err := conversationFlag("export", *conv, fs)
	if err != nil {
		return err
	}
	requester, err := uuid.Parse(*by)
	if err != nil || requester == uuid.Nil {
		return &usageError{msg: "export: --requested-by must be a UUID"}
	}
	c, err := openRiver(ctx, getenv, stdout, stderr, *asJSON)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.client.Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpDecrypt, ConversationID: id, RequestedBy: requester}, nil)
	if err != nil {
		return err
	}
	c.audit.Info("audit", slog.String("action", "export"), slog.Int64("job_id", res.Job.ID),
		slog.String("conversation_id", id.String()), slog.String("requested_by", requester.String()))
	c.enqueued([]int64{res.Job.ID}, fmt.Sprintf("enqueued encrypt-decrypt job %d: export of conversation %s to the runner's EXPORT_DIR", res.Job.ID, id), *wait)
	if !*wait {
		return nil
	}
	return c.waitJob(ctx, res.Job.ID, *timeout)
}

func conversationFlag(cmd, v string, fs *flag.FlagSet) (uuid.UUID, error) {
	if fs.NArg() > 0 {
		return uuid.Nil, &usageError{msg: fmt.Sprintf("%s: unexpected argument %q", cmd, fs.Arg(0))}
	}
	id, err := uuid.Parse(v)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, &usageError{msg: cmd + ": --conversation must be a conversation id (UUID)"}
	}
	return id, nil
}

// waitJob polls job id until it finishes and prints its state and output;
// an error unless it completed.
func (c *riverCLI) waitJob(ctx context.Context, id int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		j, err := c.client.JobGet(ctx, id)
		if err != nil {
			return err
		}
		if j.FinalizedAt != nil {
			var meta struct {
				Output json.RawMessage `json:"output"`
			}
			_ = json.Unmarshal(j.Metadata, &meta)
			if c.json {
				if err := c.showJob(j); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(c.out, "job %d %s: %s\n", j.ID, j.State, meta.Output)
			}
			if j.State != rivertype.JobStateCompleted {
				last := ""
				if n := len(j.Errors); n > 0 {
					last = j.Errors[n-1].Error
				}
				return fmt.Errorf("%s job %d ended %s: %s", j.Kind, j.ID, j.State, last)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("job %d did not finish within %s (is a runner running?)", id, timeout)
}

// runRotate enqueues rotate jobs: for one conversation, or for every
// conversation whose data key is not yet wrapped by the active
// key-encryption key (with --reencrypt-content: every conversation with a
// key, each moved to a fresh data key).
func runRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conv := fs.String("conversation", "", "the conversation to rotate")
	all := fs.Bool("all", false, "every conversation whose key is not under the active key (ENCRYPTION_ACTIVE_KEY)")
	reencrypt := fs.Bool("reencrypt-content", false, "also re-encrypt content under a new data key (and delete the old one)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("rotate: unexpected argument %q", fs.Arg(0))}
	}
	if (*conv == "") == !*all {
		return &usageError{msg: "rotate: give exactly one of --conversation ID and --all"}
	}
	var ids []uuid.UUID
	if *conv != "" {
		id, err := conversationFlag("rotate", *conv, fs)
		if err != nil {
			return err
		}
		ids = []uuid.UUID{id}
	}
	active := config.NewReader(getenv).ActiveKey()
	if *all && !*reencrypt && active == "" {
		return &usageError{msg: fmt.Sprintf("rotate --all: set %s to the key-encryption key id the runners now use", config.EncryptionActiveKey)}
	}
	c, err := openRiver(ctx, getenv, stdout, stderr, *asJSON)
	if err != nil {
		return err
	}
	defer c.close()
	if *all {
		// With --reencrypt-content every conversation with a key is
		// visited (no key id is empty).
		kek := active
		if *reencrypt {
			kek = ""
		}
		if ids, err = db.ConversationsNotUnderKEK(ctx, c.pool, kek); err != nil {
			return err
		}
	}
	const batch = 1000
	var enqueued int
	jobIDs := []int64{}
	for start := 0; start < len(ids); start += batch {
		params := make([]river.InsertManyParams, 0, batch)
		for _, id := range ids[start:min(start+batch, len(ids))] {
			params = append(params, river.InsertManyParams{Args: jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpRotate, ConversationID: id, ReencryptContent: *reencrypt}})
		}
		res, err := c.client.InsertMany(ctx, params)
		if err != nil {
			return err
		}
		enqueued += len(res)
		for _, r := range res {
			jobIDs = append(jobIDs, r.Job.ID)
		}
	}
	c.audit.Info("audit", slog.String("action", "rotate"), slog.Int("jobs", enqueued), slog.Bool("reencrypt_content", *reencrypt))
	suffix := ""
	if *reencrypt {
		suffix = " with reencrypt_content"
	}
	c.enqueued(jobIDs, fmt.Sprintf("enqueued %d rotate job(s)%s", enqueued, suffix), false)
	return nil
}
