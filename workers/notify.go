package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/jobs"
)

// previewRunes bounds a notification's preview of the message.
const previewRunes = 100

// encryptedPreview stands in for the preview of an encrypted message.
const encryptedPreview = "New encrypted message"

// SendNotificationWorker notifies a message's recipient on the channels of
// their preferences (or the job's): one notifications row per (message,
// recipient, channel), so a retry never notifies a channel twice. in_app
// is written and published on the recipient's Redis channel. Push, email
// and SMS are suppressed while the recipient is online (unless the message
// is critical or they asked otherwise): a gateway received the in-app
// frame (it holds a socket of theirs), or their presence key says they
// had a socket open within its TTL. Otherwise they are sent through the worker's notify.Providers'
// providers: push to every active device token (one delivery row each),
// email to the preferences' address, SMS to their phone number.
//
// A channel without a provider is recorded cancelled ("channel disabled"),
// one without an address cancelled with that reason, a permanent provider
// error failed with the provider's reason; none of them is retried. A
// transient error leaves the channel pending and fails the attempt, so
// River retries it with the queue's backoff; the last attempt records it
// failed. A job none of whose channels got through is cancelled with the
// reasons.
type SendNotificationWorker struct {
	Policy[jobs.SendNotificationArgs]
	pool   *pgxpool.Pool
	fanout *fanout.Fanout
	notify notify.Providers
	logger *slog.Logger
}

// NewSendNotificationWorker returns the send-notification worker of
// queue q. fo delivers in-app notifications and tells presence; a nil
// provider in providers disables its channel (recorded cancelled), nil
// Templates means the built-in ones.
func NewSendNotificationWorker(q jobs.QueueSpec, pool *pgxpool.Pool, fo *fanout.Fanout, providers notify.Providers, logger *slog.Logger) *SendNotificationWorker {
	return &SendNotificationWorker{Policy: Policy[jobs.SendNotificationArgs]{Queue: q}, pool: pool, fanout: fo, notify: providers, logger: orDiscard(logger)}
}

// NotificationOutput is the job's recorded output: each channel's outcome.
type NotificationOutput map[string]string

// channelOutcome is how one channel ended in this attempt. transient, when
// set, leaves the notification pending (unless this is the last attempt);
// disabled marks a channel without a provider.
type channelOutcome struct {
	res       db.NotificationResult
	transient error
	disabled  bool
}

// Work implements river.Worker.
func (w *SendNotificationWorker) Work(ctx context.Context, job *river.Job[jobs.SendNotificationArgs]) error {
	a := job.Args
	typ := a.Type
	if typ == "" {
		typ = "new_message"
	}
	tpl, err := w.templates()
	if err != nil {
		return river.JobCancel(err)
	}
	if !tpl.Has(typ) {
		return river.JobCancel(fmt.Errorf("%w: %q", notify.ErrNoTemplate, typ))
	}
	if a.RecipientID == uuid.Nil {
		return w.notifyGroup(ctx, job, typ, tpl)
	}
	u, err := w.notifyUser(ctx, job, a.RecipientID, typ, tpl)
	if err != nil {
		return err
	}
	_ = river.RecordOutput(ctx, u.out)
	return u.verdict()
}

// userOutcome is how notifying one user went: each channel's outcome,
// the transient failures to retry, the refusals, and how many channels
// were disabled (no provider) out of how many wanted.
type userOutcome struct {
	out                NotificationOutput
	transient, refused []error
	disabled, channels int
}

// verdict is the job's ending for one user's outcome: retried while a
// channel failed transiently, cancelled when every channel is disabled or
// none got through.
func (u userOutcome) verdict() error {
	if len(u.transient) > 0 {
		return errors.Join(u.transient...)
	}
	switch {
	case u.channels > 0 && u.disabled == u.channels:
		return river.JobCancel(fmt.Errorf("every channel of this notification is disabled (%s): no provider configured", strings.Join(slices.Sorted(maps.Keys(u.out)), ", ")))
	case u.channels > 0 && len(u.refused) == u.channels:
		return river.JobCancel(fmt.Errorf("no channel of this notification got through: %w", errors.Join(u.refused...)))
	}
	return nil
}

// notifyUser notifies recipient of the job's message on their channels.
// Its error ends the job at once (the message is gone, a template does
// not render, Redis is down, the database failed); everything else is in
// the outcome.
func (w *SendNotificationWorker) notifyUser(ctx context.Context, job *river.Job[jobs.SendNotificationArgs], recipient uuid.UUID, typ string, tpl *notify.Templates) (userOutcome, error) {
	a := job.Args
	// The message, the preferences and every channel's claim: one
	// statement.
	claimed, err := db.ClaimMessageNotifications(ctx, w.pool, a.MessageID, recipient, a.Channels, typ)
	if errors.Is(err, db.ErrNotFound) {
		return userOutcome{}, river.JobCancel(fmt.Errorf("message %s no longer exists", a.MessageID))
	}
	if err != nil {
		return userOutcome{}, err
	}
	m, prefs, claims := claimed.Message, claimed.Preferences, claimed.Claims
	channels := inAppFirst(claimed.Channels)
	vars := templateVars(m, claimed.SenderName)
	// Presence is read only when a channel depends on it, and not at all
	// when the in-app frame (worked first) just reached a socket: Redis
	// counts the gateways subscribed for the recipient, which they are
	// while the recipient has a socket open. Unknown presence (Redis
	// down) counts as offline: better a notification too many than a
	// missed one.
	var online, presenceKnown bool
	isOnline := func() bool {
		if !presenceKnown && w.fanout != nil {
			online, _ = w.fanout.Online(ctx, recipient)
		}
		presenceKnown = true
		return online
	}
	critical := m.Priority == int(jobs.PriorityCritical)
	last := job.Attempt >= job.MaxAttempts

	out := NotificationOutput{}
	var transient, refused []error
	disabled := 0
	// Outcomes a retry may repeat harmlessly (in-app: its frame carries
	// the notification id, which clients dedupe; suppressed) are recorded
	// together at the end, and on every way out of this run, so one
	// already published is not left pending; a channel sent through a
	// provider is recorded as soon as it is sent, so a retry never sends
	// it again.
	deferred := map[uuid.UUID]db.NotificationResult{}
	defer func() {
		if len(deferred) > 0 {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = db.FinishNotifications(fctx, w.pool, deferred)
		}
	}()
	for _, ch := range channels {
		id, status := claims[ch].ID, claims[ch].Status
		if status != "pending" {
			out[ch] = status + " (earlier attempt)"
			continue
		}
		c, err := tpl.Render(typ, ch, vars)
		if err != nil {
			return userOutcome{}, river.JobCancel(err)
		}
		var o channelOutcome
		external := false
		switch {
		case ch == jobs.ChannelInApp:
			if w.fanout == nil {
				return userOutcome{}, errors.New("send-notification: the worker has no fanout for in-app notifications")
			}
			receivers, err := w.fanout.PublishNotification(ctx, recipient, fanout.NotificationFrame{
				ID: id, MessageID: m.ID, Title: c.Title, Body: c.Body, CreatedAt: time.Now().UTC(),
			})
			if err != nil {
				return userOutcome{}, snoozeOnRedis(w.Queue, job.JobRow, w.logger, err)
			}
			if receivers > 0 {
				online, presenceKnown = true, true
			}
			o.res.Status = "sent"
		case claimed.Muted && !critical:
			o.res.Status, o.res.Reason = "suppressed", ptr("the recipient muted the conversation")
		case !critical && !prefs.NotifyWhenOnline && isOnline():
			o.res.Status, o.res.Reason = "suppressed", ptr("the recipient is online")
		default:
			o, external = w.send(ctx, id, m, recipient, ch, prefs, c), true
		}
		if o.disabled {
			disabled++
		}
		if o.transient != nil {
			w.logger.Warn("notification provider failed; will retry", slog.Int64("job_id", job.ID),
				slog.String("message_id", m.ID.String()), slog.String("channel", ch), slog.Int("attempt", job.Attempt),
				slog.String("error", o.transient.Error()))
			if !last {
				transient = append(transient, fmt.Errorf("%s: %w", ch, o.transient))
				out[ch] = "pending (retrying)"
				continue
			}
			if o.res.Status == "" {
				o.res.Status, o.res.Reason = "failed", ptr(fmt.Sprintf("gave up after %d attempts: %v", job.Attempt, o.transient))
			}
		}
		o.res.Title, o.res.Body = &c.Title, &c.Body
		if external {
			if err := db.FinishNotification(ctx, w.pool, id, o.res); err != nil {
				return userOutcome{}, err
			}
		} else {
			deferred[id] = o.res
		}
		out[ch] = o.res.Status
		if o.res.Status == "cancelled" || o.res.Status == "failed" {
			reason := ""
			if o.res.Reason != nil {
				reason = *o.res.Reason
			}
			refused = append(refused, fmt.Errorf("%s %s: %s", ch, o.res.Status, reason))
		}
	}
	if err := db.FinishNotifications(ctx, w.pool, deferred); err != nil {
		return userOutcome{}, err
	}
	deferred = nil
	return userOutcome{out: out, transient: transient, refused: refused, disabled: disabled, channels: len(channels)}, nil
}

// groupPage is how many members of a group notifyGroup reads at a time.
const groupPage = 200

// GroupNotificationOutput is a group notification job's recorded output.
type GroupNotificationOutput struct {
	// Members is how many members were notified (each on their own
	// channels); Retrying how many had a channel fail transiently.
	Members  int `json:"members"`
	Retrying int `json:"retrying"`
}

// notifyGroup notifies every member who could see a group message (its
// window covers the message's seq), apart from its sender, working the
// members in pages of groupPage. Each member's channels are claimed as a
// direct message's are, one notification row per (message, member,
// channel), so a retry passes over what an earlier attempt sent. A
// member's channels failing for good do not fail the job; one failing
// transiently makes the job retry, which notifies only what is still
// pending.
func (w *SendNotificationWorker) notifyGroup(ctx context.Context, job *river.Job[jobs.SendNotificationArgs], typ string, tpl *notify.Templates) error {
	m, err := db.GetMessage(ctx, w.pool, job.Args.MessageID)
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("message %s no longer exists", job.Args.MessageID))
	}
	if err != nil {
		return err
	}
	if !m.IsGroup() {
		return river.JobCancel(fmt.Errorf("message %s is a direct message: its notification names its recipient", m.ID))
	}
	var out GroupNotificationOutput
	var transient []error
	after := uuid.Nil
	for {
		page, err := db.GroupNotificationAudience(ctx, w.pool, m.ConversationID, m.SenderID, m.Seq, after, groupPage)
		if err != nil {
			return err
		}
		for _, member := range page {
			u, err := w.notifyUser(ctx, job, member, typ, tpl)
			if err != nil {
				return err
			}
			out.Members++
			if len(u.transient) > 0 {
				out.Retrying++
				if len(transient) < 3 { // the first few say enough
					transient = append(transient, fmt.Errorf("member %s: %w", member, errors.Join(u.transient...)))
				}
			}
		}
		if len(page) < groupPage {
			break
		}
		after = page[len(page)-1]
	}
	_ = river.RecordOutput(ctx, out)
	if len(transient) > 0 {
		return fmt.Errorf("%d of %d members to retry: %w", out.Retrying, out.Members, errors.Join(transient...))
	}
	return nil
}

// inAppFirst returns channels with in_app, when present, moved first.
func inAppFirst(channels []string) []string {
	i := slices.Index(channels, jobs.ChannelInApp)
	if i <= 0 {
		return channels
	}
	out := make([]string, 0, len(channels))
	out = append(out, jobs.ChannelInApp)
	out = append(out, channels[:i]...)
	return append(out, channels[i+1:]...)
}

// send delivers c on an external channel (push, email or sms).
func (w *SendNotificationWorker) send(ctx context.Context, id uuid.UUID, m db.Message, user uuid.UUID, ch string, prefs db.Preferences, c notify.Content) channelOutcome {
	p := w.notify
	disabled := channelOutcome{disabled: true, res: db.NotificationResult{Status: "cancelled", Reason: ptr("channel disabled: no " + ch + " provider is configured")}}
	var pid string
	var err error
	switch ch {
	case jobs.ChannelPush:
		if p.Push == nil {
			return disabled
		}
		return w.push(ctx, id, m, user, c)
	case jobs.ChannelEmail:
		if p.Email == nil {
			return disabled
		}
		if prefs.EmailAddress == nil || *prefs.EmailAddress == "" {
			return channelOutcome{res: db.NotificationResult{Status: "cancelled", Reason: ptr("no email address on file")}}
		}
		pid, err = p.Email.SendEmail(ctx, notify.Email{To: *prefs.EmailAddress, Subject: c.Title, Text: c.Body, HTML: c.HTML, IdempotencyKey: id.String()})
	case jobs.ChannelSMS:
		if p.SMS == nil {
			return disabled
		}
		if prefs.Phone == nil || *prefs.Phone == "" {
			return channelOutcome{res: db.NotificationResult{Status: "cancelled", Reason: ptr("no phone number on file")}}
		}
		pid, err = p.SMS.SendSMS(ctx, notify.SMS{To: *prefs.Phone, Body: c.Body, IdempotencyKey: id.String()})
	default:
		return channelOutcome{res: db.NotificationResult{Status: "cancelled", Reason: ptr("unknown channel " + ch)}}
	}
	switch {
	case err == nil:
		return channelOutcome{res: db.NotificationResult{Status: "sent", ProviderMessageID: nonEmpty(pid)}}
	case errors.Is(err, notify.ErrPermanent):
		return channelOutcome{res: db.NotificationResult{Status: "failed", Reason: ptr(err.Error())}}
	default:
		return channelOutcome{transient: err}
	}
}

// push sends c to every active device of user, one delivery row per
// device, so a retry skips devices an earlier attempt finished. A device
// whose token the provider refuses as invalid is deactivated. The channel
// is sent when at least one device got it and failed when every device
// refused; a transient failure on any device is reported as well, so the
// caller retries the devices still pending (or, on the last attempt,
// records what is known).
func (w *SendNotificationWorker) push(ctx context.Context, id uuid.UUID, m db.Message, user uuid.UUID, c notify.Content) channelOutcome {
	devices, err := db.ListActiveDevices(ctx, w.pool, user)
	if err != nil {
		return channelOutcome{transient: err}
	}
	if len(devices) == 0 {
		return channelOutcome{res: db.NotificationResult{Status: "cancelled", Reason: ptr("no active device token on file")}}
	}
	var sentID *string
	sent := 0
	var reasons []string
	var transient []error
	for _, d := range devices {
		status, pid, err := db.ClaimDelivery(ctx, w.pool, id, d.ID)
		if err != nil {
			transient = append(transient, err)
			continue
		}
		switch status {
		case "sent":
			sent++
			if sentID == nil {
				sentID = pid
			}
			continue
		case "pending":
		default:
			reasons = append(reasons, "device "+d.ID.String()+" "+status+" earlier")
			continue
		}
		providerID, err := w.notify.Push.Push(ctx, notify.PushMessage{
			Token: d.Token, Title: c.Title, Body: c.Body,
			Data:        map[string]string{"notification_id": id.String(), "message_id": m.ID.String(), "conversation_id": m.ConversationID.String()},
			CollapseKey: id.String(), IdempotencyKey: id.String() + "/" + d.ID.String(),
		})
		var res db.NotificationResult
		switch {
		case err == nil:
			sent++
			res = db.NotificationResult{Status: "sent", ProviderMessageID: nonEmpty(providerID)}
			if sentID == nil {
				sentID = res.ProviderMessageID
			}
		case errors.Is(err, notify.ErrInvalidToken):
			if _, derr := db.DeactivateDeviceToken(ctx, w.pool, d.ID, d.Token); derr != nil {
				transient = append(transient, derr)
				continue
			}
			w.logger.Info("push provider refused a device token; deactivated it",
				slog.String("message_id", m.ID.String()), slog.String("device_id", d.ID.String()))
			res = db.NotificationResult{Status: "failed", Reason: ptr("token deactivated: " + err.Error())}
		case errors.Is(err, notify.ErrPermanent):
			res = db.NotificationResult{Status: "failed", Reason: ptr(err.Error())}
		default:
			transient = append(transient, fmt.Errorf("device %s: %w", d.ID, err))
			continue
		}
		if res.Reason != nil {
			reasons = append(reasons, "device "+d.ID.String()+": "+*res.Reason)
		}
		if err := db.FinishDelivery(ctx, w.pool, id, d.ID, res); err != nil {
			// Not recorded: a retry may push this device again. Retrying is
			// still right, since the channel's row is not finished either.
			transient = append(transient, err)
		}
	}
	var o channelOutcome
	switch {
	case sent > 0:
		o.res = db.NotificationResult{Status: "sent", ProviderMessageID: sentID}
		if len(reasons) > 0 {
			o.res.Reason = ptr(fmt.Sprintf("sent to %d of %d devices; %s", sent, len(devices), strings.Join(reasons, "; ")))
		}
	case len(transient) == 0:
		o.res = db.NotificationResult{Status: "failed", Reason: ptr(strings.Join(reasons, "; "))}
	}
	if len(transient) > 0 {
		o.transient = errors.Join(transient...)
	}
	return o
}

// templates returns the providers' Templates, or the built-in ones.
func (w *SendNotificationWorker) templates() (*notify.Templates, error) {
	if t := w.notify.Templates; t != nil {
		return t, nil
	}
	return builtinTemplates()
}

// builtinTemplates parses the built-in templates once; the result is
// never modified.
var builtinTemplates = sync.OnceValues(func() (*notify.Templates, error) { return notify.LoadTemplates("") })

// render returns the in-app title and body of m from the built-in
// templates.
func render(m db.Message) (title, body string, err error) {
	t, err := builtinTemplates()
	if err != nil {
		return "", "", err
	}
	c, err := t.Render("new_message", jobs.ChannelInApp, templateVars(m, ""))
	return c.Title, c.Body, err
}

// templateVars are the template variables of m, sent by senderName (the
// sender's display name; its id when it set none). An encrypted message's
// preview never leaves the database: the preview then says only that a
// message arrived.
func templateVars(m db.Message, senderName string) notify.Vars {
	if senderName == "" {
		senderName = m.SenderID.String()
	}
	v := notify.Vars{
		SenderName: senderName, SenderID: m.SenderID.String(),
		ConversationID: m.ConversationID.String(), MessageID: m.ID.String(),
		Preview: encryptedPreview, Encrypted: true,
	}
	if m.Content != nil && len(m.Ciphertext) == 0 && m.KeyID == nil {
		// Stored content is valid UTF-8; the preview stays so whatever
		// reaches here (providers and Postgres text refuse anything else).
		v.Preview, v.Encrypted = strings.ToValidUTF8(*m.Content, "\uFFFD"), false
		if utf8.RuneCountInString(v.Preview) > previewRunes {
			v.Preview = string([]rune(v.Preview)[:previewRunes]) + "…"
		}
	}
	if m.DeletedAt != nil {
		v.Preview = "A message was deleted"
	}
	return v
}

func ptr(s string) *string { return &s }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
