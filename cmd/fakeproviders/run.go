package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/notify/notifytest"
)

// Development credentials: these servers accept only these.
const (
	smtpUser, smtpPassword = "dev", "dev-smtp-password"
	pushProject            = "dev-project" // pushes carry tokens minted for a service account (below)
	smsSID, smsToken       = "ACdev", "dev-sms-token"
	smsFrom                = "+15005550006"
)

// run serves until ctx is cancelled.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fakeproviders", flag.ContinueOnError)
	smtpAddr := fs.String("smtp", "127.0.0.1:2525", "SMTP listen address (loopback only)")
	pushAddr := fs.String("push", "127.0.0.1:4001", "push API listen address (loopback only)")
	smsAddr := fs.String("sms", "127.0.0.1:4002", "SMS API listen address (loopback only)")
	envFile := fs.String("env-file", ".dev/fakeproviders.env", "where to write the runner's environment (shell syntax)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, a := range []string{*smtpAddr, *pushAddr, *smsAddr} {
		if err := requireLoopback(a); err != nil {
			return err
		}
	}
	cert, err := notifytest.NewCert()
	if err != nil {
		return err
	}
	smtpSrv, err := notifytest.NewSMTPServer(notifytest.SMTPConfig{Addr: *smtpAddr, Username: smtpUser, Password: smtpPassword, Cert: cert})
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer smtpSrv.Close()
	pushSrv, err := notifytest.NewPushServer(*pushAddr, pushProject, "")
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer pushSrv.Close()
	// As with real FCM, the runner signs in with a service account key
	// and mints its own access tokens from it.
	pushKey, err := pushSrv.NewServiceAccount(time.Hour)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	smsSrv, err := notifytest.NewSMSServer(*smsAddr, smsSID, smsToken)
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	defer smsSrv.Close()

	if err := os.MkdirAll(filepath.Dir(*envFile), 0o700); err != nil {
		return err
	}
	base := strings.TrimSuffix(*envFile, filepath.Ext(*envFile))
	caFile, keyFile := base+"-ca.pem", base+"-push-service-account.json"
	if err := os.WriteFile(caFile, cert.PEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pushKey, 0o600); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(smtpSrv.Addr)
	env := exportLine(config.SMTPHost, host, config.SMTPPort, port, config.SMTPUsername, smtpUser, config.SMTPPassword, smtpPassword,
		config.SMTPFrom, "'msgrunner <noreply@example.com>'", config.SMTPRequireTLS, "true", config.SMTPCAFile, caFile) +
		exportLine(config.PushBaseURL, pushSrv.URL, config.PushProjectID, pushProject, config.PushServiceAccountFile, keyFile) +
		exportLine(config.SMSBaseURL, smsSrv.URL, config.SMSAccountSID, smsSID, config.SMSAuthToken, smsToken, config.SMSFrom, smsFrom)
	if err := os.WriteFile(*envFile, []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fake providers: smtp %s, push %s, sms %s; runner environment in %s\n", smtpSrv.Addr, pushSrv.URL, smsSrv.URL, *envFile)

	// Print what arrives, as the recipient would see it.
	var mails, pushes, texts int
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, m := range smtpSrv.Mails()[mails:] {
			mails++
			fmt.Fprintf(stdout, "[email] to %s (tls=%t): %s\n", strings.Join(m.To, ","), m.TLS, subjectOf(m.Data))
		}
		for _, p := range pushSrv.Requests()[pushes:] {
			pushes++
			fmt.Fprintf(stdout, "[push] token %s: %s — %s\n", shortToken(p.Token), p.Title, p.Body)
		}
		for _, s := range smsSrv.Requests()[texts:] {
			texts++
			fmt.Fprintf(stdout, "[sms] to %s: %s\n", s.To, s.Body)
		}
	}
}

// exportLine is a shell line exporting pairs of a variable and its value
// (written as the shell should read it).
func exportLine(pairs ...any) string {
	var b strings.Builder
	b.WriteString("export")
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, " %s=%s", pairs[i], pairs[i+1])
	}
	b.WriteString("\n")
	return b.String()
}

// requireLoopback refuses listen addresses outside loopback: these servers
// accept fixed development credentials.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New(addr + ": fake providers listen on loopback only")
	}
	return nil
}

func subjectOf(data []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return "(unreadable message)"
	}
	s, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return msg.Header.Get("Subject")
	}
	return s
}

func shortToken(t string) string {
	if len(t) > 12 {
		return t[:12] + "…"
	}
	return t
}
