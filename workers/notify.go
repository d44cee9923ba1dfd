package workers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/jobs"
)

// notificationTemplates are the title and body of a new-message
// notification; variables: .Sender (id), .Preview, .Conversation.
var notificationTemplates = template.Must(template.New("notify").Option("missingkey=error").Parse(
	`{{define "title"}}New message{{end}}{{define "body"}}{{.Preview}}{{end}}`))

// previewRunes bounds a notification's preview of the message.
const previewRunes = 100

// SendNotificationWorker notifies a message's recipient on the channels of
// their preferences (or the job's): one notifications row per (message,
// recipient, channel), so a retry never notifies a channel twice. in_app
// is written and published on the recipient's Redis channel. Push, email
// and SMS are suppressed while the recipient is online (unless the message
// is critical or they asked otherwise) and, as long as no provider for
// them is configured in this build, recorded as cancelled with that reason
// and never as sent; a job whose every channel is disabled is cancelled.
type SendNotificationWorker struct {
	Policy[jobs.SendNotificationArgs]
	deps Deps
}

// NotificationOutput is the job's recorded output: each channel's outcome.
type NotificationOutput map[string]string

// Work implements river.Worker.
func (w *SendNotificationWorker) Work(ctx context.Context, job *river.Job[jobs.SendNotificationArgs]) error {
	a := job.Args
	m, err := db.GetMessage(ctx, w.deps.Pool, a.MessageID)
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("message %s no longer exists", a.MessageID))
	}
	if err != nil {
		return err
	}
	prefs, err := db.GetPreferences(ctx, w.deps.Pool, a.RecipientID)
	if err != nil {
		return err
	}
	channels := a.Channels
	if len(channels) == 0 {
		for ch, on := range map[string]bool{jobs.ChannelPush: prefs.Push, jobs.ChannelInApp: prefs.InApp, jobs.ChannelEmail: prefs.Email, jobs.ChannelSMS: prefs.SMS} {
			if on {
				channels = append(channels, ch)
			}
		}
		slices.Sort(channels)
	}
	typ := a.Type
	if typ == "" {
		typ = "new_message"
	}
	title, body, err := render(m)
	if err != nil {
		return river.JobCancel(err)
	}
	online := false
	if w.deps.Fanout != nil {
		// Unknown presence (Redis down) counts as offline: better a
		// notification too many than a missed one.
		online, _ = w.deps.Fanout.Online(ctx, a.RecipientID)
	}
	critical := m.Priority == int(jobs.PriorityCritical)

	out := NotificationOutput{}
	disabled := 0
	for _, ch := range channels {
		id, status, err := db.ClaimNotification(ctx, w.deps.Pool, m.ID, a.RecipientID, ch, typ)
		if err != nil {
			return err
		}
		if status != "pending" {
			out[ch] = status + " (earlier attempt)"
			continue
		}
		res := db.NotificationResult{Title: &title, Body: &body}
		switch {
		case ch == jobs.ChannelInApp:
			if w.deps.Fanout == nil {
				return errors.New("send-notification: workers.Deps.Fanout is not set")
			}
			err := w.deps.Fanout.PublishNotification(ctx, a.RecipientID, fanout.NotificationFrame{
				ID: id, MessageID: m.ID, Title: title, Body: body, CreatedAt: time.Now().UTC(),
			})
			if err != nil {
				return snoozeOnRedis(w.Queue, job.JobRow, w.deps.Logger, err)
			}
			res.Status = "sent"
		case online && !critical && !prefs.NotifyWhenOnline:
			res.Status, res.Reason = "suppressed", ptr("the recipient is online")
		default:
			res.Status, res.Reason = "cancelled", ptr("channel disabled: no "+ch+" provider is configured in this build")
			disabled++
		}
		if err := db.FinishNotification(ctx, w.deps.Pool, id, res); err != nil {
			return err
		}
		out[ch] = res.Status
	}
	_ = river.RecordOutput(ctx, out)
	if len(channels) > 0 && disabled == len(channels) {
		return river.JobCancel(fmt.Errorf("every channel of this notification is disabled (%s): no provider configured", strings.Join(channels, ", ")))
	}
	return nil
}

// render fills the templates. An encrypted message's preview never leaves
// the database: the body then says only that a message arrived.
func render(m db.Message) (title, body string, err error) {
	preview := "New encrypted message"
	if m.Content != nil {
		// Stored content is valid UTF-8; the preview stays so whatever
		// reaches here (providers and Postgres text refuse anything else).
		preview = strings.ToValidUTF8(*m.Content, "\uFFFD")
		if utf8.RuneCountInString(preview) > previewRunes {
			preview = string([]rune(preview)[:previewRunes]) + "…"
		}
	}
	if m.DeletedAt != nil {
		preview = "A message was deleted"
	}
	vars := map[string]any{"Sender": m.SenderID.String(), "Preview": preview, "Conversation": m.ConversationID.String()}
	var t, b bytes.Buffer
	if err := notificationTemplates.ExecuteTemplate(&t, "title", vars); err != nil {
		return "", "", fmt.Errorf("notification title template: %w", err)
	}
	if err := notificationTemplates.ExecuteTemplate(&b, "body", vars); err != nil {
		return "", "", fmt.Errorf("notification body template: %w", err)
	}
	return t.String(), b.String(), nil
}

func ptr(s string) *string { return &s }
