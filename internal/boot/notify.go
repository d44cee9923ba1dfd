package boot

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"

	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/notify"
)

// NotifyProviders builds the notification providers and templates c
// configures (the runner's): email when SMTP_HOST is set, push when PUSH_PROJECT_ID is,
// SMS when SMS_ACCOUNT_SID is. It reads SMTP_CA_FILE and
// PUSH_SERVICE_ACCOUNT_FILE, and parses and checks the templates, so a bad
// file or template stops the binary at start. Problems go to r and name
// the variable, never a secret's value.
func NotifyProviders(r *config.Reader, c config.Notify) notify.Providers {
	var p notify.Providers
	if c.SMTP.Host != "" {
		cfg := notify.SMTPConfig{
			Host: c.SMTP.Host, Port: c.SMTP.Port, Username: c.SMTP.Username, Password: c.SMTP.Password,
			From: c.SMTP.From, HeloName: c.SMTP.Helo, RequireTLS: c.SMTP.RequireTLS, Timeout: c.ProviderTimeout,
		}
		if file := c.SMTP.CAFile; file != "" {
			pem, err := os.ReadFile(file)
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				r.Fail(config.SMTPCAFile, "%q is not a readable PEM certificate file", file)
			}
			cfg.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		if s, err := notify.NewSMTP(cfg); err != nil {
			failField(r, err, map[string]config.Var{"Host": config.SMTPHost, "Port": config.SMTPPort, "From": config.SMTPFrom, "Password": config.SMTPPassword})
		} else {
			p.Email = s
		}
	}
	if c.Push.ProjectID != "" {
		cfg := notify.PushConfig{BaseURL: c.Push.BaseURL, ProjectID: c.Push.ProjectID, Credential: c.Push.Credential, Timeout: c.ProviderTimeout}
		keyOK := true
		if file := c.Push.ServiceAccountFile; file != "" {
			key, err := os.ReadFile(file)
			if err != nil || len(key) == 0 {
				r.Fail(config.PushServiceAccountFile, "%q is not a readable, non-empty file", file)
				keyOK = false
			}
			cfg.ServiceAccountJSON = key
		}
		if keyOK {
			f, err := notify.NewFCM(cfg)
			if err != nil {
				failField(r, err, map[string]config.Var{"BaseURL": config.PushBaseURL, "ProjectID": config.PushProjectID,
					"Credential": config.PushCredential, "ServiceAccountJSON": config.PushServiceAccountFile})
			} else {
				p.Push = f
			}
		}
	}
	if c.SMS.AccountSID != "" {
		t, err := notify.NewTwilio(notify.SMSConfig{
			BaseURL: c.SMS.BaseURL, AccountSID: c.SMS.AccountSID, AuthToken: c.SMS.AuthToken, From: c.SMS.From, Timeout: c.ProviderTimeout,
		})
		if err != nil {
			failField(r, err, map[string]config.Var{"BaseURL": config.SMSBaseURL, "AccountSID": config.SMSAccountSID,
				"AuthToken": config.SMSAuthToken, "From": config.SMSFrom})
		} else {
			p.SMS = t
		}
	}
	tpl, err := notify.LoadTemplates(c.TemplatesDir)
	if err != nil {
		r.Fail(config.NotifyTemplatesDir, "%v", err)
	}
	p.Templates = tpl
	return p
}

// failField records a provider constructor's error, whose first word is
// the config field (or its possessive), under the field's variable; other
// fields the message names are replaced by their variables too.
func failField(r *config.Reader, err error, vars map[string]config.Var) {
	first, rest, _ := strings.Cut(err.Error(), " ")
	for f, v := range vars {
		rest = strings.ReplaceAll(rest, f, string(v))
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
