package notifytest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	// TLS reports that STARTTLS was done before MAIL FROM.
	TLS bool
	// AuthUser is the user that authenticated, or "".
	AuthUser string
}

// SMTPConfig configures an SMTPServer.
type SMTPConfig struct {
	// Addr to listen on; 127.0.0.1:0 when empty.
	Addr string
	// Username and Password, when Username is set, are required (AUTH
	// PLAIN, only after STARTTLS).
	Username, Password string
	// Cert enables STARTTLS. Nil: the server offers no STARTTLS (and then
	// no AUTH either).
	Cert *Cert
}

// SMTPServer is a local SMTP server that records the mail it accepts.
type SMTPServer struct {
	// Addr is the listening address.
	Addr string
	cfg  SMTPConfig
	srv  *smtp.Server
	l    net.Listener

	mu      sync.Mutex
	mails   []Mail
	rejects map[string]*smtp.SMTPError
}

// NewSMTPServer starts a server; Close stops it.
func NewSMTPServer(cfg SMTPConfig) (*SMTPServer, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &SMTPServer{Addr: l.Addr().String(), cfg: cfg, l: l, rejects: map[string]*smtp.SMTPError{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.MaxRecipients = 10
	s.srv.ErrorLog = discardLogger{}
	if cfg.Cert != nil {
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cfg.Cert.TLS}, MinVersion: tls.VersionTLS12}
	}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close stops the server.
func (s *SMTPServer) Close() error {
	_ = s.l.Close() // Serve may not have taken the listener yet
	// The listener closed above may be closed again by the server.
	if err := s.srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Reject makes RCPT TO rcpt fail with code (4xx transient, 5xx permanent).
func (s *SMTPServer) Reject(rcpt string, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ec := smtp.EnhancedCode{5, 1, 1}
	if code < 500 {
		ec = smtp.EnhancedCode{4, 2, 1}
	}
	s.rejects[rcpt] = &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
}

// Accept undoes Reject.
func (s *SMTPServer) Accept(rcpt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rejects, rcpt)
}

// Mails returns the accepted mail, in order.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

type session struct {
	s        *SMTPServer
	conn     *smtp.Conn
	authUser string
	mail     Mail
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.cfg.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.cfg.Username || password != ss.s.cfg.Password || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.cfg.Username != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	_, tlsOn := ss.conn.TLSConnectionState()
	ss.mail = Mail{From: from, TLS: tlsOn, AuthUser: ss.authUser}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	rej := ss.s.rejects[to]
	ss.s.mu.Unlock()
	if rej != nil {
		return rej
	}
	ss.mail.To = append(ss.mail.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(ss.mail.To) == 0 {
		return errors.New("no recipients")
	}
	ss.mail.Data = b
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, ss.mail)
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.mail = Mail{} }
func (ss *session) Logout() error { return nil }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
