package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"time"

	"github.com/msgrunner/msgrunner/internal/notify"
)

// Notify returns the notification providers and templates:
//
//   - email when SMTP_HOST is set: SMTP_PORT (587), SMTP_USERNAME,
//     SMTP_PASSWORD, SMTP_FROM (required), SMTP_HELO, SMTP_REQUIRE_TLS
//     (false), SMTP_CA_FILE (extra trusted roots, PEM);
//   - push when PUSH_PROJECT_ID is set: PUSH_BASE_URL, and either
//     PUSH_SERVICE_ACCOUNT_FILE (a Google service account key file: the
//     runner mints and renews OAuth 2 access tokens from it, as real FCM
//     needs) or PUSH_CREDENTIAL (a fixed bearer credential);
//   - SMS when SMS_ACCOUNT_SID is set: SMS_BASE_URL, SMS_AUTH_TOKEN and
//     SMS_FROM (required);
//   - NOTIFY_PROVIDER_TIMEOUT (10s) bounds one provider call;
//   - NOTIFY_TEMPLATES_DIR overrides or adds templates, which are parsed
//     and checked here, so a bad template stops the binary at start.
//
// Problems name the variable, never a secret's value.
func (r *Reader) Notify() notify.Providers {
	var p notify.Providers
	timeout := r.Duration("NOTIFY_PROVIDER_TIMEOUT", notify.DefaultTimeout, 100*time.Millisecond, 5*time.Minute)
	if host, ok := r.Lookup("SMTP_HOST"); ok {
		cfg := notify.SMTPConfig{
			Host: host, Port: r.Int("SMTP_PORT", 587, 1, 65535),
			Username: r.String("SMTP_USERNAME", ""), Password: r.String("SMTP_PASSWORD", ""),
			From: r.String("SMTP_FROM", ""), HeloName: r.String("SMTP_HELO", ""),
			RequireTLS: r.Bool("SMTP_REQUIRE_TLS", false), Timeout: timeout,
		}
		if file, ok := r.Lookup("SMTP_CA_FILE"); ok {
			pem, err := os.ReadFile(file)
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				r.Fail("SMTP_CA_FILE", "%q is not a readable PEM certificate file", file)
			}
			cfg.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		if s, err := notify.NewSMTP(cfg); err != nil {
			r.failField(err, map[string]string{"Host": "SMTP_HOST", "Port": "SMTP_PORT", "From": "SMTP_FROM", "Password": "SMTP_PASSWORD"})
		} else {
			p.Email = s
		}
	}
	if project, ok := r.Lookup("PUSH_PROJECT_ID"); ok {
		cfg := notify.PushConfig{
			BaseURL: r.String("PUSH_BASE_URL", notify.DefaultPushBaseURL), ProjectID: project,
			Credential: r.String("PUSH_CREDENTIAL", ""), Timeout: timeout,
		}
		keyOK := true
		if file, ok := r.Lookup("PUSH_SERVICE_ACCOUNT_FILE"); ok {
			key, err := os.ReadFile(file)
			if err != nil || len(key) == 0 {
				r.Fail("PUSH_SERVICE_ACCOUNT_FILE", "%q is not a readable, non-empty file", file)
				keyOK = false
			}
			cfg.ServiceAccountJSON = key
		}
		if keyOK {
			f, err := notify.NewFCM(cfg)
			if err != nil {
				r.failField(err, map[string]string{"BaseURL": "PUSH_BASE_URL", "ProjectID": "PUSH_PROJECT_ID", "Credential": "PUSH_CREDENTIAL",
					"ServiceAccountJSON": "PUSH_SERVICE_ACCOUNT_FILE"})
			} else {
				p.Push = f
			}
		}
	}
	if sid, ok := r.Lookup("SMS_ACCOUNT_SID"); ok {
		t, err := notify.NewTwilio(notify.SMSConfig{
			BaseURL: r.String("SMS_BASE_URL", notify.DefaultSMSBaseURL), AccountSID: sid,
			AuthToken: r.String("SMS_AUTH_TOKEN", ""), From: r.String("SMS_FROM", ""), Timeout: timeout,
		})
		if err != nil {
			r.failField(err, map[string]string{"BaseURL": "SMS_BASE_URL", "AccountSID": "SMS_ACCOUNT_SID", "AuthToken": "SMS_AUTH_TOKEN", "From": "SMS_FROM"})
		} else {
			p.SMS = t
		}
	}
	tpl, err := notify.LoadTemplates(r.String("NOTIFY_TEMPLATES_DIR", ""))
	if err != nil {
		r.Fail("NOTIFY_TEMPLATES_DIR", "%v", err)
	}
	p.Templates = tpl
	return p
}

// failField records a provider constructor's error, whose first word is
// the config field (or its possessive), under the field's variable; other
// fields the message names are replaced by their variables too.
func (r *Reader) failField(err error, vars map[string]string) {
	first, rest, _ := strings.Cut(err.Error(), " ")
	for f, v := range vars {
		rest = strings.ReplaceAll(rest, f, v)
	}
	field, possessive := strings.CutSuffix(first, "'s")
	if v, ok := vars[field]; ok {
		if possessive {
			rest = "its " + rest
		}
		r.Fail(v, "%s", rest)
		return
	}
	r.Fail("notification provider", "%v", err)
}
