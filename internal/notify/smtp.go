package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// SMTPConfig configures the SMTP email provider.
type SMTPConfig struct {
	// Host and Port of the submission server. Host is required; Port
	// defaults to 587.
	Host string
	Port int
	// Username and Password, when Username is set, are sent with AUTH
	// PLAIN, which net/smtp only does over TLS (or to a loopback host).
	Username, Password string
	// From is the sender, an address with an optional display name
	// ("msgrunner <noreply@example.com>"). Required.
	From string
	// HeloName is the name given in EHLO; "localhost" when empty.
	HeloName string
	// RequireTLS refuses to send unless the server offers STARTTLS.
	RequireTLS bool
	// TLSConfig is used for STARTTLS (its ServerName is set to Host). Nil
	// means the system roots.
	TLSConfig *tls.Config
	// Timeout bounds one whole send; DefaultTimeout when zero.
	Timeout time.Duration
}

// SMTP sends email over SMTP: STARTTLS whenever the server offers it, AUTH
// when a username is configured, one connection per email. It is safe for
// concurrent use.
type SMTP struct {
	cfg  SMTPConfig
	from *mail.Address
}

// NewSMTP checks cfg and returns the provider. Errors name the field.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" || strings.ContainsAny(cfg.Host, " /\r\n") {
		return nil, errors.New("Host is required")
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, errors.New("Port must be in [1, 65535]")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, errors.New("From must be an email address, optionally with a name")
	}
	if cfg.Username != "" && cfg.Password == "" {
		return nil, errors.New("Password is required with Username")
	}
	if cfg.HeloName == "" {
		cfg.HeloName = "localhost"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TLSConfig == nil {
		cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &SMTP{cfg: cfg, from: from}, nil
}

// SendEmail sends m as a multipart/alternative message (text/plain and
// text/html, both quoted-printable UTF-8) and returns its Message-ID. An
// invalid recipient address and 5xx replies are permanent errors; 4xx
// replies and connection failures are transient.
func (s *SMTP) SendEmail(ctx context.Context, m Email) (string, error) {
	to, err := mail.ParseAddress(m.To)
	if err != nil || to.Address != m.To {
		return "", &Error{Provider: "smtp", Permanent: true, Msg: "invalid email address"}
	}
	messageID := messageID(m.IdempotencyKey, s.from.Address)
	raw, err := buildMessage(s.from, to, m, messageID, time.Now())
	if err != nil {
		return "", fmt.Errorf("smtp: building the message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.send(ctx, to.Address, raw); err != nil {
		return "", err
	}
	return messageID, nil
}

func (s *SMTP) send(ctx context.Context, to string, raw []byte) (err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("smtp provider: %w", err)
	}
	// The deadline bounds every read and write; cancelling ctx cuts the
	// connection short.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return smtpError("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HeloName); err != nil {
		return smtpError("EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := s.cfg.TLSConfig.Clone()
		tc.ServerName = s.cfg.Host
		if err := c.StartTLS(tc); err != nil {
			return smtpError("STARTTLS", err)
		}
	} else if s.cfg.RequireTLS {
		return &Error{Provider: "smtp", Msg: "the server does not offer STARTTLS and TLS is required"}
	}
	if s.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return &Error{Provider: "smtp", Msg: "the server does not offer AUTH but a username is configured"}
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return smtpError("AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return smtpError("MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return smtpError("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpError("DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		return smtpError("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpError("end of DATA", err)
	}
	// The message is accepted once DATA is answered 250; a failing QUIT
	// changes nothing.
	_ = c.Quit()
	return nil
}

// smtpError classifies an SMTP failure: 5xx replies are permanent, 4xx
// replies and everything else (network, TLS) transient. The reply text is
// the server's; credentials are never part of it.
func smtpError(step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &Error{Provider: "smtp", Code: te.Code, Permanent: te.Code >= 500, Msg: shorten(step + ": " + te.Msg)}
	}
	return fmt.Errorf("smtp provider: %s: %w", step, err)
}

// messageID returns the Message-ID (with angle brackets) of the email with
// idempotency key key, so a resend of the same notification carries the
// same id.
func messageID(key, fromAddr string) string {
	domain := "msgrunner.invalid"
	if at := strings.LastIndexByte(fromAddr, '@'); at >= 0 {
		domain = fromAddr[at+1:]
	}
	local := strings.Map(func(r rune) rune {
		if r < '!' || r > '~' || strings.ContainsRune(`<>@()[]\,;:"`, r) {
			return -1
		}
		return r
	}, key)
	if local == "" {
		local = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return "<" + local + "@" + domain + ">"
}

// buildMessage writes the headers and the multipart/alternative body with
// CRLF line ends. Header values are encoded (RFC 2047) so no newline in a
// subject can add a header.
func buildMessage(from, to *mail.Address, m Email, messageID string, date time.Time) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct{ typ, content string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.typ+"; charset=utf-8")
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write([]byte(p.content)); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	subject := strings.Join(strings.Fields(m.Subject), " ")
	var msg bytes.Buffer
	for _, h := range [][2]string{
		{"From", from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", date.Format(time.RFC1123Z)},
		{"Message-ID", messageID},
		{"MIME-Version", "1.0"},
		{"Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()})},
	} {
		msg.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}
