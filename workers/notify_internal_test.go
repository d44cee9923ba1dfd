package workers

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/notify/notifytest"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
)

// notifyBundle is a database, Redis prefix, the three fake providers and
// a send-notification worker configured against them.
type notifyBundle struct {
	pool       *pgxpool.Pool
	outbox     *outbox.Outbox
	smtp       *notifytest.SMTPServer
	push       *notifytest.PushServer
	sms        *notifytest.SMSServer
	worker     *SendNotificationWorker
	alice, bob uuid.UUID
	rdb        *redis.Client
	fanout     *fanout.Fanout
}

const (
	bobEmail = "bob@example.org"
	bobPhone = "+14155550123"
)

// setupNotify starts the fake providers; providers lists which of them
// the worker is configured with ("email", "push", "sms").
func setupNotify(t *testing.T, providers ...string) *notifyBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	rdb, prefix := dbtest.Redis(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)

	cert, err := notifytest.NewCert()
	require.NoError(t, err)
	smtpSrv, err := notifytest.NewSMTPServer(notifytest.SMTPConfig{Username: "mailer", Password: "smtp-secret", Cert: cert})
	require.NoError(t, err)
	t.Cleanup(func() { _ = smtpSrv.Close() })
	pushSrv, err := notifytest.NewPushServer("", "proj", "push-secret")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pushSrv.Close() })
	smsSrv, err := notifytest.NewSMSServer("", "AC1", "sms-secret")
	require.NoError(t, err)
	t.Cleanup(func() { _ = smsSrv.Close() })

	var p notify.Providers
	for _, name := range providers {
		switch name {
		case "email":
			host, port, _ := net.SplitHostPort(smtpSrv.Addr)
			n, _ := strconv.Atoi(port)
			e, err := notify.NewSMTP(notify.SMTPConfig{Host: host, Port: n, Username: "mailer", Password: "smtp-secret",
				From: "msgrunner <noreply@example.com>", TLSConfig: &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12}})
			require.NoError(t, err)
			p.Email = e
		case "push":
			f, err := notify.NewFCM(notify.PushConfig{BaseURL: pushSrv.URL, ProjectID: "proj", Credential: "push-secret", Timeout: 300 * time.Millisecond})
			require.NoError(t, err)
			p.Push = f
		case "sms":
			s, err := notify.NewTwilio(notify.SMSConfig{BaseURL: smsSrv.URL, AccountSID: "AC1", AuthToken: "sms-secret", From: "+15005550006", Timeout: 300 * time.Millisecond})
			require.NoError(t, err)
			p.SMS = s
		}
	}
	fo := fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: prefix}})
	set, err := newSet(Deps{
		Pool: pool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: p, Fanout: fo,
	}, jobs.DefaultQueues())
	require.NoError(t, err)
	return &notifyBundle{pool: pool, outbox: ob, smtp: smtpSrv, push: pushSrv, sms: smsSrv,
		worker: set.sendNotification, alice: uuid.New(), bob: uuid.New(), rdb: rdb, fanout: fo}
}

// send stores a message from Alice to Bob: plaintext content, or (when
// ciphertext is set) an encrypted one.
func (b *notifyBundle) send(t *testing.T, content string, ciphertext []byte) uuid.UUID {
	t.Helper()
	m := outbox.Message{ConversationID: uuid.New(), SenderID: b.alice, RecipientID: b.bob, Content: content}
	if ciphertext != nil {
		m.Content, m.Ciphertext, m.KeyID = "", ciphertext, "k1"
	}
	res, err := b.outbox.Send(context.Background(), b.pool, m)
	require.NoError(t, err)
	return res.ID
}

// everything turns on every channel for Bob, with both addresses.
func (b *notifyBundle) everything(t *testing.T) {
	t.Helper()
	require.NoError(t, db.SetPreferences(context.Background(), b.pool, b.bob, db.Preferences{
		Push: true, InApp: true, Email: true, SMS: true, EmailAddress: ptr(bobEmail), Phone: ptr(bobPhone),
	}))
}

func (b *notifyBundle) device(t *testing.T, token string) uuid.UUID {
	t.Helper()
	id, err := db.RegisterDevice(context.Background(), b.pool, b.bob, "android", token)
	require.NoError(t, err)
	return id
}

// work runs one attempt of send-notification for message.
func (b *notifyBundle) work(t *testing.T, message uuid.UUID, attempt int, channels ...string) error {
	t.Helper()
	args := jobs.SendNotificationArgs{MessageID: message, RecipientID: b.bob, Channels: channels}
	return b.worker.Work(context.Background(), &river.Job[jobs.SendNotificationArgs]{
		JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt, MaxAttempts: 3, Kind: args.Kind()}, Args: args,
	})
}

type notificationRow struct {
	Status, Reason, ProviderID, Body string
}

func (b *notifyBundle) rows(t *testing.T, message uuid.UUID) map[string]notificationRow {
	t.Helper()
	rs, err := b.pool.Query(context.Background(), `SELECT channel::text, status::text, coalesce(failure_reason, ''),
		coalesce(provider_message_id, ''), coalesce(body, '') FROM notifications WHERE message_id = $1`, message)
	require.NoError(t, err)
	defer rs.Close()
	out := map[string]notificationRow{}
	for rs.Next() {
		var ch string
		var r notificationRow
		require.NoError(t, rs.Scan(&ch, &r.Status, &r.Reason, &r.ProviderID, &r.Body))
		out[ch] = r
	}
	require.NoError(t, rs.Err())
	return out
}

func (b *notifyBundle) deliveries(t *testing.T, message uuid.UUID) map[uuid.UUID]string {
	t.Helper()
	rs, err := b.pool.Query(context.Background(), `SELECT d.device_token_id, d.status::text FROM notification_deliveries d
		JOIN notifications n ON n.id = d.notification_id WHERE n.message_id = $1`, message)
	require.NoError(t, err)
	defer rs.Close()
	out := map[uuid.UUID]string{}
	for rs.Next() {
		var id uuid.UUID
		var s string
		require.NoError(t, rs.Scan(&id, &s))
		out[id] = s
	}
	return out
}

func isCancel(err error) bool {
	var jc *rivertype.JobCancelError
	return errors.As(err, &jc)
}

func TestNotificationReachesEveryProviderOnce(t *testing.T) {
	t.Parallel()
	b := setupNotify(t, "email", "push", "sms")
	b.everything(t)
	d1, d2 := b.device(t, "token-one"), b.device(t, "token-two")
	msg := b.send(t, "See you at <8>?", nil)

	require.NoError(t, b.work(t, msg, 1))
	rows := b.rows(t, msg)
	for _, ch := range []string{"in_app", "push", "email", "sms"} {
		require.Equal(t, "sent", rows[ch].Status, "%s: %+v", ch, rows[ch])
	}

	mails := b.smtp.Mails()
	require.Len(t, mails, 1)
	require.Equal(t, []string{bobEmail}, mails[0].To)
	require.True(t, mails[0].TLS)
	require.Equal(t, "mailer", mails[0].AuthUser)
	require.Contains(t, string(mails[0].Data), "Content-Type: multipart/alternative")
	require.Contains(t, string(mails[0].Data), "See you at &lt;8&gt;?", "the HTML part escapes the preview")
	require.Contains(t, string(mails[0].Data), "Message-ID: "+rows["email"].ProviderID)
	require.True(t, strings.HasSuffix(rows["email"].ProviderID, "@example.com>"))

	pushes := b.push.Requests()
	require.Len(t, pushes, 2)
	tokens := []string{pushes[0].Token, pushes[1].Token}
	require.ElementsMatch(t, []string{"token-one", "token-two"}, tokens)
	for _, p := range pushes {
		require.True(t, p.Authorized)
		require.Equal(t, "New message from "+b.alice.String(), p.Title)
		require.Equal(t, "See you at <8>?", p.Body)
		require.Equal(t, msg.String(), p.Data["message_id"])
	}
	require.Equal(t, "projects/proj/messages/1", rows["push"].ProviderID)
	require.Equal(t, map[uuid.UUID]string{d1: "sent", d2: "sent"}, b.deliveries(t, msg))

	texts := b.sms.Requests()
	require.Len(t, texts, 1)
	require.Equal(t, bobPhone, texts[0].To)
	require.Equal(t, "+15005550006", texts[0].From)
	require.True(t, texts[0].Authorized)
	require.Equal(t, "New message from "+b.alice.String()+": See you at <8>?", texts[0].Body)
	_, err := uuid.Parse(texts[0].IdempotencyKey)
	require.NoError(t, err, "the idempotency key is the notification's id")
	require.True(t, strings.HasPrefix(rows["sms"].ProviderID, "SM"))

	// The same job again (a retry, a duplicate): nothing is sent twice.
	require.NoError(t, b.work(t, msg, 2))
	require.Len(t, b.smtp.Mails(), 1)
	require.Len(t, b.push.Requests(), 2)
	require.Len(t, b.sms.Requests(), 1)
}

func TestNotificationsNameTheSenderByItsDisplayName(t *testing.T) {
	t.Parallel()
	b := setupNotify(t, "email", "push", "sms")
	b.everything(t)
	b.device(t, "token-one")
	_, err := db.SetProfile(context.Background(), b.pool, b.alice, "Alice Liddell")
	require.NoError(t, err)

	msg := b.send(t, "tea?", nil)
	require.NoError(t, b.work(t, msg, 1))
	require.Equal(t, "New message from Alice Liddell", b.push.Requests()[0].Title)
	require.Equal(t, "New message from Alice Liddell: tea?", b.sms.Requests()[0].Body)
	require.Contains(t, string(b.smtp.Mails()[0].Data), "New message from Alice Liddell")

	// A sender without a name is shown by its id.
	deleted, err := db.DeleteProfile(context.Background(), b.pool, b.alice)
	require.NoError(t, err)
	require.True(t, deleted)
	msg = b.send(t, "still there?", nil)
	require.NoError(t, b.work(t, msg, 1))
	require.Equal(t, "New message from "+b.alice.String(), b.push.Requests()[1].Title)
}

func TestEncryptedMessagePreviewNeverReachesAProvider(t *testing.T) {
	t.Parallel()
	b := setupNotify(t, "email", "push", "sms")
	b.everything(t)
	b.device(t, "token-one")
	secret := []byte("TOPSECRET-ciphertext-bytes")
	msg := b.send(t, "", secret)

	require.NoError(t, b.work(t, msg, 1))
	leaks := []string{"TOPSECRET", base64.StdEncoding.EncodeToString(secret)}
	mails := b.smtp.Mails()
	require.Len(t, mails, 1)
	pushes := b.push.Requests()
	require.Len(t, pushes, 1)
	texts := b.sms.Requests()
	require.Len(t, texts, 1)
	seen := map[string]string{"email": string(mails[0].Data), "push": string(pushes[0].Raw), "sms": texts[0].Body}
	for ch, row := range b.rows(t, msg) {
		require.Equal(t, "sent", row.Status, ch)
		seen[ch+" row"] = row.Body
	}
	for where, text := range seen {
		for _, leak := range leaks {
			require.NotContains(t, text, leak, where)
		}
		require.Contains(t, text, "New encrypted message", where)
	}
}

func TestPermanentProviderErrorsAreRecordedNotRetried(t *testing.T) {
	t.Parallel()
	b := setupNotify(t, "email", "push", "sms")
	b.everything(t)
	gone := b.device(t, "token-gone")
	b.push.Answer("token-gone", notifytest.Unregistered)
	b.smtp.Reject(bobEmail, 550, "no such mailbox")
	b.sms.Answer(bobPhone, notifytest.SMSInvalidNumber)
	msg := b.send(t, "hello", nil)

	err := b.work(t, msg, 1, "push", "email", "sms")
	require.True(t, isCancel(err), "every channel refused: the job is cancelled, not retried: %v", err)
	rows := b.rows(t, msg)
	require.Equal(t, "failed", rows["email"].Status)
	require.Contains(t, rows["email"].Reason, "550")
	require.Equal(t, "failed", rows["sms"].Status)
	require.Contains(t, rows["sms"].Reason, "21211")
	require.Equal(t, "failed", rows["push"].Status)
	require.Contains(t, rows["push"].Reason, "UNREGISTERED")
	require.Equal(t, map[uuid.UUID]string{gone: "failed"}, b.deliveries(t, msg))

	var active bool
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT active FROM device_tokens WHERE id = $1`, gone).Scan(&active))
	require.False(t, active, "an unregistered token is deactivated")
	for _, r := range rows {
		require.NotContains(t, r.Reason, "secret")
	}

	// Nothing is re-sent by a later run of the job.
	require.NoError(t, b.work(t, msg, 2, "push", "email", "sms"))
	require.Len(t, b.push.Requests(), 1)
	require.Len(t, b.sms.Requests(), 1)
}

func TestMissingAddressesAndProvidersAreCancelledWithTheReason(t *testing.T) {
	t.Parallel()
	b := setupNotify(t, "email", "push", "sms")
	msg := b.send(t, "hello", nil) // Bob has no preferences, addresses or devices

	err := b.work(t, msg, 1, "push", "email", "sms")
	require.True(t, isCancel(err), "%v", err)
	rows := b.rows(t, msg)
	require.Equal(t, notificationRow{Status: "cancelled", Reason: "no email address on file", Body: rows["email"].Body}, rows["email"])
	require.Equal(t, "no phone number on file", rows["sms"].Reason)
	require.Equal(t, "no active device token on file", rows["push"].Reason)

	// Without providers the channels stay disabled, never sent.
	n := setupNotify(t)
	n.everything(t)
	n.device(t, "token-one")
	msg = n.send(t, "hello", nil)
	err = n.work(t, msg, 1, "push", "email", "sms")
	require.True(t, isCancel(err))
	require.ErrorContains(t, err, "disabled")
	for ch, r := range n.rows(t, msg) {
		require.Equal(t, "cancelled", r.Status, ch)
		require.Equal(t, "channel disabled: no "+ch+" provider is configured", r.Reason)
	}
	require.Empty(t, n.smtp.Mails())
	require.Empty(t, n.push.Requests())
	require.Empty(t, n.sms.Requests())
}

func TestTransientErrorsRetryOnlyWhatIsPending(t *testing.T) {
	t.Parallel()
	b := setupNotify(t, "email", "push", "sms")
	b.everything(t)
	ok, flaky := b.device(t, "token-ok"), b.device(t, "token-flaky")
	b.push.Answer("token-flaky", notifytest.ServerError)
	b.sms.Answer(bobPhone, notifytest.TooManyRequests)
	b.smtp.Reject(bobEmail, 451, "greylisted")
	msg := b.send(t, "hello", nil)

	err := b.work(t, msg, 1)
	require.Error(t, err)
	require.False(t, isCancel(err), "a transient error is retried: %v", err)
	rows := b.rows(t, msg)
	require.Equal(t, "sent", rows["in_app"].Status)
	for _, ch := range []string{"push", "email", "sms"} {
		require.Equal(t, "pending", rows[ch].Status, ch)
	}
	require.Equal(t, map[uuid.UUID]string{ok: "sent", flaky: "pending"}, b.deliveries(t, msg))

	// The providers recover: the retry sends what is pending, only that.
	b.push.Answer("token-flaky", notifytest.Answer{})
	b.sms.Answer(bobPhone, notifytest.Answer{})
	b.smtp.Accept(bobEmail)
	require.NoError(t, b.work(t, msg, 2))
	rows = b.rows(t, msg)
	for _, ch := range []string{"in_app", "push", "email", "sms"} {
		require.Equal(t, "sent", rows[ch].Status, ch)
	}
	perToken := map[string]int{}
	for _, p := range b.push.Requests() {
		perToken[p.Token]++
	}
	require.Equal(t, map[string]int{"token-ok": 1, "token-flaky": 2}, perToken)
	require.Len(t, b.smtp.Mails(), 1)
	require.Len(t, b.sms.Requests(), 2)
	require.Equal(t, map[uuid.UUID]string{ok: "sent", flaky: "sent"}, b.deliveries(t, msg))
}

func TestLastAttemptRecordsATransientFailure(t *testing.T) {
	t.Parallel()
	b := setupNotify(t, "push")
	b.everything(t)
	b.device(t, "token-slow")
	b.push.Answer("token-slow", notifytest.Timeout)
	msg := b.send(t, "hello", nil)

	err := b.work(t, msg, 3, "push")
	require.True(t, isCancel(err), "%v", err)
	row := b.rows(t, msg)["push"]
	require.Equal(t, "failed", row.Status)
	require.Contains(t, row.Reason, "gave up after 3 attempts")
}

func TestExternalChannelsWaitWhileTheRecipientIsOnline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupNotify(t, "email", "push", "sms")
	b.everything(t)
	b.device(t, "token-one")
	keys := b.fanout.Keys()
	suppressed := map[string]string{"push": "suppressed", "email": "suppressed", "sms": "suppressed"}
	statuses := func(msg uuid.UUID) map[string]string {
		out := map[string]string{}
		for ch, r := range b.rows(t, msg) {
			out[ch] = r.Status
		}
		return out
	}

	// A socket open on a gateway (subscribed for Bob), before any presence
	// key: the in-app frame reaches it, and that is enough.
	sub := b.rdb.Subscribe(ctx, keys.UserChannel(b.bob))
	_, err := sub.Receive(ctx)
	require.NoError(t, err)
	msg := b.send(t, "first", nil)
	require.NoError(t, b.work(t, msg, 1))
	want := map[string]string{"in_app": "sent"}
	maps.Copy(want, suppressed)
	require.Equal(t, want, statuses(msg))
	require.NoError(t, sub.Close())

	// No socket, but seen within the presence TTL, and no in-app channel
	// to publish: the presence key decides.
	require.NoError(t, db.SetPreferences(ctx, b.pool, b.bob, db.Preferences{
		Push: true, Email: true, SMS: true, EmailAddress: ptr(bobEmail), Phone: ptr(bobPhone),
	}))
	require.NoError(t, b.fanout.SetPresence(ctx, b.bob, time.Minute))
	msg = b.send(t, "second", nil)
	require.NoError(t, b.work(t, msg, 1))
	require.Equal(t, suppressed, statuses(msg))
	require.Empty(t, b.push.Requests())
	require.Empty(t, b.smtp.Mails())
	require.Empty(t, b.sms.Requests())

	// Offline: every channel is sent.
	require.NoError(t, b.rdb.Del(ctx, keys.Prefix+"presence:{"+b.bob.String()+"}").Err())
	msg = b.send(t, "third", nil)
	require.NoError(t, b.work(t, msg, 1))
	require.Equal(t, map[string]string{"push": "sent", "email": "sent", "sms": "sent"}, statuses(msg))
}
