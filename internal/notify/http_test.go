package notify_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/notify/notifytest"
)

func TestFCMRequestFormatAndSuccess(t *testing.T) {
	t.Parallel()
	srv, err := notifytest.NewPushServer("", "proj-1", "bearer-secret")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	p, err := notify.NewFCM(notify.PushConfig{BaseURL: srv.URL + "/", ProjectID: "proj-1", Credential: "bearer-secret"})
	require.NoError(t, err)

	id, err := p.Push(context.Background(), notify.PushMessage{
		Token: "tok-1", Title: "New message from Alice", Body: "hi", Data: map[string]string{"message_id": "m1"},
		CollapseKey: "n1", IdempotencyKey: "n1/d1",
	})
	require.NoError(t, err)
	require.Equal(t, "projects/proj-1/messages/1", id)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, "/v1/projects/proj-1/messages:send", r.Path)
	require.True(t, r.Authorized)
	require.Equal(t, "tok-1", r.Token)
	require.Equal(t, "New message from Alice", r.Title)
	require.Equal(t, "hi", r.Body)
	require.Equal(t, map[string]string{"message_id": "m1"}, r.Data)
	require.Equal(t, "n1", r.CollapseKey)
	require.Equal(t, "n1/d1", r.IdempotencyKey)
	require.Contains(t, string(r.Raw), `"apns":{"headers":{"apns-collapse-id":"n1"}}`)
}

func TestFCMErrorsAreClassified(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		answer       notifytest.Answer
		credential   string
		permanent    bool
		invalidToken bool
	}{
		"unregistered token":         {answer: notifytest.Unregistered, permanent: true, invalidToken: true},
		"invalid token":              {answer: notifytest.InvalidToken, permanent: true, invalidToken: true},
		"invalid payload, not token": {answer: notifytest.PushPayloadInvalid, permanent: true},
		"bad credential":             {credential: "wrong", permanent: true},
		"server error":               {answer: notifytest.ServerError},
		"rate limited":               {answer: notifytest.TooManyRequests},
		"timeout":                    {answer: notifytest.Timeout},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, err := notifytest.NewPushServer("", "proj-1", "bearer-secret")
			require.NoError(t, err)
			t.Cleanup(func() { _ = srv.Close() })
			srv.Answer("tok", tc.answer)
			cred := "bearer-secret"
			if tc.credential != "" {
				cred = tc.credential
			}
			p, err := notify.NewFCM(notify.PushConfig{BaseURL: srv.URL, ProjectID: "proj-1", Credential: cred, Timeout: 300 * time.Millisecond})
			require.NoError(t, err)
			_, err = p.Push(context.Background(), notify.PushMessage{Token: "tok", Title: "t", Body: "b"})
			require.Error(t, err)
			require.Equal(t, tc.permanent, errors.Is(err, notify.ErrPermanent), "%v", err)
			require.Equal(t, tc.invalidToken, errors.Is(err, notify.ErrInvalidToken), "%v", err)
			require.NotContains(t, err.Error(), "bearer-secret")
			require.Len(t, srv.Requests(), 1)
		})
	}
}

func TestPushConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	srv, err := notifytest.NewPushServer("", "p", "c")
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	p, err := notify.NewFCM(notify.PushConfig{BaseURL: srv.URL, ProjectID: "p", Credential: "c"})
	require.NoError(t, err)
	_, err = p.Push(context.Background(), notify.PushMessage{Token: "tok", Title: "t", Body: "b"})
	require.Error(t, err)
	require.False(t, errors.Is(err, notify.ErrPermanent))
}

func TestTwilioRequestFormatAndSuccess(t *testing.T) {
	t.Parallel()
	srv, err := notifytest.NewSMSServer("", "AC123", "twilio-secret")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	s, err := notify.NewTwilio(notify.SMSConfig{BaseURL: srv.URL, AccountSID: "AC123", AuthToken: "twilio-secret", From: "+15005550006"})
	require.NoError(t, err)
	id, err := s.SendSMS(context.Background(), notify.SMS{To: "+14155550123", Body: "New message: hi & bye", IdempotencyKey: "n1"})
	require.NoError(t, err)
	require.Equal(t, "SM00000000000000000000000000000001", id)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	require.Equal(t, notifytest.SMSRequest{
		Path: "/2010-04-01/Accounts/AC123/Messages.json", Authorized: true, IdempotencyKey: "n1",
		To: "+14155550123", From: "+15005550006", Body: "New message: hi & bye",
	}, reqs[0])
}

func TestTwilioErrorsAreClassified(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		answer    notifytest.Answer
		to        string
		token     string
		permanent bool
		requests  int
	}{
		"invalid number (provider)": {answer: notifytest.SMSInvalidNumber, permanent: true, requests: 1},
		"invalid number (local)":    {to: "0415 555", permanent: true},
		"bad credentials":           {token: "wrong", permanent: true, requests: 1},
		"server error":              {answer: notifytest.ServerError, requests: 1},
		"rate limited":              {answer: notifytest.TooManyRequests, requests: 1},
		"timeout":                   {answer: notifytest.Timeout, requests: 1},
		"forbidden":                 {answer: notifytest.Answer{Status: http.StatusForbidden, Body: `{"code":20003,"message":"no"}`}, permanent: true, requests: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, err := notifytest.NewSMSServer("", "AC123", "twilio-secret")
			require.NoError(t, err)
			t.Cleanup(func() { _ = srv.Close() })
			to := "+14155550123"
			if tc.to != "" {
				to = tc.to
			}
			srv.Answer(to, tc.answer)
			tok := "twilio-secret"
			if tc.token != "" {
				tok = tc.token
			}
			s, err := notify.NewTwilio(notify.SMSConfig{BaseURL: srv.URL, AccountSID: "AC123", AuthToken: tok, From: "+15005550006", Timeout: 300 * time.Millisecond})
			require.NoError(t, err)
			_, err = s.SendSMS(context.Background(), notify.SMS{To: to, Body: "b"})
			require.Error(t, err)
			require.Equal(t, tc.permanent, errors.Is(err, notify.ErrPermanent), "%v", err)
			require.False(t, errors.Is(err, notify.ErrInvalidToken))
			require.NotContains(t, err.Error(), "twilio-secret")
			require.Len(t, srv.Requests(), tc.requests)
		})
	}
}

func TestProviderConfigsAreValidated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  notify.PushConfig
	}{
		{"push: ftp URL", notify.PushConfig{BaseURL: "ftp://127.0.0.1", ProjectID: "p", Credential: "c"}},
		{"push: credentials in the URL", notify.PushConfig{BaseURL: "http://user:pw@127.0.0.1", ProjectID: "p", Credential: "c"}},
		{"push: no project", notify.PushConfig{BaseURL: "http://127.0.0.1", Credential: "c"}},
		{"push: no credential", notify.PushConfig{BaseURL: "http://127.0.0.1", ProjectID: "p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := notify.NewFCM(tc.cfg)
			require.Error(t, err, "%+v", tc.cfg)
		})
	}
	for _, tc := range []struct {
		name string
		cfg  notify.SMSConfig
	}{
		{"sms: no account", notify.SMSConfig{BaseURL: "http://127.0.0.1", AuthToken: "t", From: "+15005550006"}},
		{"sms: no token", notify.SMSConfig{BaseURL: "http://127.0.0.1", AccountSID: "AC1", From: "+15005550006"}},
		{"sms: sender not E.164", notify.SMSConfig{BaseURL: "http://127.0.0.1", AccountSID: "AC1", AuthToken: "t", From: "5550006"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := notify.NewTwilio(tc.cfg)
			require.Error(t, err, "%+v", tc.cfg)
		})
	}
}

func TestBuiltInTemplatesRenderEveryChannel(t *testing.T) {
	t.Parallel()
	tpl, err := notify.LoadTemplates("")
	require.NoError(t, err)
	require.True(t, tpl.Has("new_message"))
	require.False(t, tpl.Has("nope"))
	v := notify.SampleVars
	for _, ch := range []string{notify.ChannelInApp, notify.ChannelPush, notify.ChannelEmail, notify.ChannelSMS} {
		t.Run(ch, func(t *testing.T) {
			t.Parallel()
			c, err := tpl.Render("new_message", ch, v)
			require.NoError(t, err)
			require.Contains(t, c.Body, v.Preview)
		})
	}
	c, err := tpl.Render("new_message", notify.ChannelEmail, v)
	require.NoError(t, err)
	require.Equal(t, "New message from Alice", c.Title)
	require.Contains(t, c.HTML, `Hello &lt;b&gt;&#34;Bob&#34;&lt;/b&gt; &amp; friends`, "the HTML part escapes the preview")
	require.NotContains(t, c.HTML, "<b>")
	_, err = tpl.Render("nope", notify.ChannelPush, v)
	require.ErrorIs(t, err, notify.ErrNoTemplate)
}

func TestLoadTemplatesRejectsBadTemplates(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		files map[string]string
		want  string
	}{
		"parse error":         {map[string]string{"new_message.push.title.tmpl": "{{.SenderName"}, "new_message.push.title.tmpl"},
		"unknown variable":    {map[string]string{"new_message.sms.body.tmpl": "{{.Nickname}}"}, "new_message.sms.body.tmpl"},
		"empty push title":    {map[string]string{"new_message.push.title.tmpl": "{{if false}}x{{end}}"}, "empty"},
		"unknown channel":     {map[string]string{"new_message.fax.body.tmpl": "x"}, `unknown channel "fax"`},
		"html for push":       {map[string]string{"new_message.push.html.tmpl": "x"}, `no part "html"`},
		"new type incomplete": {map[string]string{"reaction.push.title.tmpl": "x", "reaction.push.body.tmpl": "y"}, "reaction.in_app.title.tmpl is missing"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for n, src := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(src), 0o600))
			}
			_, err := notify.LoadTemplates(dir)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadTemplatesOverridesBuiltIns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "new_message.sms.body.tmpl"), []byte("{{.SenderName}} says {{.Preview}}"), 0o600))
	tpl, err := notify.LoadTemplates(dir)
	require.NoError(t, err)
	c, err := tpl.Render("new_message", notify.ChannelSMS, notify.Vars{SenderName: "A", Preview: "p"})
	require.NoError(t, err)
	require.Equal(t, "A says p", c.Body)
	c, err = tpl.Render("new_message", notify.ChannelPush, notify.Vars{SenderName: "A", Preview: "p"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(c.Title, "New message from A"))
}
