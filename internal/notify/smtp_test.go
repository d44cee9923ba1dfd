package notify_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/notify/notifytest"
)

type smtpBundle struct {
	server *notifytest.SMTPServer
	cert   *notifytest.Cert
	config notify.SMTPConfig
}

// setupSMTP starts an SMTP server with STARTTLS (a fresh self-signed
// certificate) and, unless noAuth, AUTH PLAIN, and returns a client
// config that trusts it.
func setupSMTP(t *testing.T, withTLS, withAuth bool) *smtpBundle {
	t.Helper()
	cert, err := notifytest.NewCert()
	require.NoError(t, err)
	cfg := notifytest.SMTPConfig{}
	if withTLS {
		cfg.Cert = cert
	}
	if withAuth {
		cfg.Username, cfg.Password = "mailer", "s3cret-pass"
	}
	srv, err := notifytest.NewSMTPServer(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	host, port, err := net.SplitHostPort(srv.Addr)
	require.NoError(t, err)
	p, _ := strconv.Atoi(port)
	return &smtpBundle{server: srv, cert: cert, config: notify.SMTPConfig{
		Host: host, Port: p, Username: cfg.Username, Password: cfg.Password,
		From: "msgrunner <noreply@example.com>", Timeout: 5 * time.Second,
		TLSConfig: &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12},
	}}
}

func newSMTP(t *testing.T, cfg notify.SMTPConfig) *notify.SMTP {
	t.Helper()
	s, err := notify.NewSMTP(cfg)
	require.NoError(t, err)
	return s
}

func TestSMTPSendsMultipartOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	b := setupSMTP(t, true, true)
	text := "Alice wrote:\n\nCafé = ok, a line that is long enough to need a soft break in quoted-printable encoding, which wraps at 76.\n.\nend"
	html := `<p>Alice wrote: <b>Café</b></p>`
	id, err := newSMTP(t, b.config).SendEmail(context.Background(), notify.Email{
		To: "bob@example.org", Subject: "Héllo\r\nBcc: eve@example.net", Text: text, HTML: html,
		IdempotencyKey: "0190c0de-0000-7000-8000-000000000001",
	})
	require.NoError(t, err)
	require.Equal(t, "<0190c0de-0000-7000-8000-000000000001@example.com>", id)

	mails := b.server.Mails()
	require.Len(t, mails, 1)
	m := mails[0]
	require.Equal(t, "noreply@example.com", m.From)
	require.Equal(t, []string{"bob@example.org"}, m.To)
	require.True(t, m.TLS, "MAIL FROM came before STARTTLS")
	require.Equal(t, "mailer", m.AuthUser)

	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	require.NoError(t, err)
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "Héllo Bcc: eve@example.net", subject, "a newline in the subject must not start a header")
	require.Empty(t, msg.Header.Get("Bcc"))
	require.Equal(t, id, msg.Header.Get("Message-ID"))
	require.Equal(t, "1.0", msg.Header.Get("MIME-Version"))
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	require.NoError(t, err)
	require.Equal(t, "noreply@example.com", from.Address)
	_, err = mail.ParseDate(msg.Header.Get("Date"))
	require.NoError(t, err)

	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mt)
	mr := multipart.NewReader(msg.Body, params["boundary"])
	want := []struct{ typ, body string }{{"text/plain", text}, {"text/html", html}}
	for _, w := range want {
		p, err := mr.NextRawPart() // raw: keep the transfer encoding visible
		require.NoError(t, err)
		ct, cp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		require.NoError(t, err)
		require.Equal(t, w.typ, ct)
		require.Equal(t, "utf-8", cp["charset"])
		require.Equal(t, "quoted-printable", p.Header.Get("Content-Transfer-Encoding"))
		raw, err := io.ReadAll(p)
		require.NoError(t, err)
		for _, line := range strings.Split(string(raw), "\r\n") {
			require.LessOrEqual(t, len(line), 76, "quoted-printable line too long")
		}
		got, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		require.NoError(t, err)
		require.Equal(t, strings.ReplaceAll(w.body, "\n", "\r\n"), string(got))
	}
	_, err = mr.NextPart()
	require.ErrorIs(t, err, io.EOF)
}

func TestSMTPWithoutAuthStillUsesSTARTTLS(t *testing.T) {
	t.Parallel()
	b := setupSMTP(t, true, false)
	_, err := newSMTP(t, b.config).SendEmail(context.Background(), notify.Email{To: "bob@example.org", Subject: "s", Text: "t", HTML: "<p>h</p>", IdempotencyKey: "k"})
	require.NoError(t, err)
	m := b.server.Mails()
	require.Len(t, m, 1)
	require.True(t, m[0].TLS)
	require.Empty(t, m[0].AuthUser)
}

func TestSMTPErrorsAreClassified(t *testing.T) {
	t.Parallel()
	email := notify.Email{To: "bob@example.org", Subject: "s", Text: "t", HTML: "<p>h</p>", IdempotencyKey: "k"}
	cases := map[string]struct {
		prepare   func(b *smtpBundle) notify.SMTPConfig
		to        string
		permanent bool
	}{
		"wrong password": {prepare: func(b *smtpBundle) notify.SMTPConfig {
			c := b.config
			c.Password = "wrong"
			return c
		}, permanent: true},
		"mailbox rejected 550": {prepare: func(b *smtpBundle) notify.SMTPConfig {
			b.server.Reject("bob@example.org", 550, "no such user")
			return b.config
		}, permanent: true},
		"mailbox busy 451": {prepare: func(b *smtpBundle) notify.SMTPConfig {
			b.server.Reject("bob@example.org", 451, "try again later")
			return b.config
		}},
		"invalid address": {prepare: func(b *smtpBundle) notify.SMTPConfig { return b.config }, to: "not an address", permanent: true},
		"untrusted certificate": {prepare: func(b *smtpBundle) notify.SMTPConfig {
			c := b.config
			c.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12} // system roots only
			return c
		}},
		"connection refused": {prepare: func(b *smtpBundle) notify.SMTPConfig {
			c := b.config
			// Gone: the send must fail as a refused connection.
			_ = b.server.Close()
			return c
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupSMTP(t, true, true)
			cfg := tc.prepare(b)
			e := email
			if tc.to != "" {
				e.To = tc.to
			}
			_, err := newSMTP(t, cfg).SendEmail(context.Background(), e)
			require.Error(t, err)
			require.Equal(t, tc.permanent, errors.Is(err, notify.ErrPermanent), "%v", err)
			require.NotContains(t, err.Error(), "s3cret-pass")
			require.Empty(t, b.server.Mails())
		})
	}
}

func TestSMTPRequireTLSRefusesAPlaintextServer(t *testing.T) {
	t.Parallel()
	b := setupSMTP(t, false, false)
	cfg := b.config
	cfg.RequireTLS = true
	_, err := newSMTP(t, cfg).SendEmail(context.Background(), notify.Email{To: "bob@example.org", Subject: "s", Text: "t", HTML: "h", IdempotencyKey: "k"})
	require.ErrorContains(t, err, "STARTTLS")
	require.False(t, errors.Is(err, notify.ErrPermanent))
	require.Empty(t, b.server.Mails())

	// Without RequireTLS the same server gets the mail in the clear.
	cfg.RequireTLS = false
	_, err = newSMTP(t, cfg).SendEmail(context.Background(), notify.Email{To: "bob@example.org", Subject: "s", Text: "t", HTML: "h", IdempotencyKey: "k"})
	require.NoError(t, err)
	require.False(t, b.server.Mails()[0].TLS)
}

func TestNewSMTPValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  notify.SMTPConfig
	}{
		{"no host", notify.SMTPConfig{From: "a@example.com"}},
		{"sender not an address", notify.SMTPConfig{Host: "127.0.0.1", From: "nope"}},
		{"port out of range", notify.SMTPConfig{Host: "127.0.0.1", From: "a@example.com", Port: 70000}},
		{"user without password", notify.SMTPConfig{Host: "127.0.0.1", From: "a@example.com", Username: "u"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := notify.NewSMTP(tc.cfg)
			require.Error(t, err, "%+v", tc.cfg)
		})
	}
}
