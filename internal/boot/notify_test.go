package boot_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/boot"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/notify/notifytest"
)

// providers builds the notification providers from env as the runner
// does, and returns them with every configuration problem found.
func providers(env map[string]string) (notify.Providers, error) {
	r := config.NewReader(func(k string) string { return env[k] })
	p := boot.NotifyProviders(r, r.Runner().Notify)
	return p, r.Err()
}

func TestNotifyProvidersFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "smtp-pw", "SMTP_FROM": "n <n@example.com>",
		"PUSH_PROJECT_ID": "proj", "PUSH_BASE_URL": "http://127.0.0.1:9", "PUSH_CREDENTIAL": "bearer",
		"SMS_ACCOUNT_SID": "AC1", "SMS_BASE_URL": "http://127.0.0.1:9", "SMS_AUTH_TOKEN": "tok", "SMS_FROM": "+15005550006",
	}
	p, err := providers(env)
	require.NoError(t, err)
	require.NotNil(t, p.Email)
	require.NotNil(t, p.Push)
	require.NotNil(t, p.SMS)
	require.NotNil(t, p.Templates)

	// Nothing set: every external channel disabled, templates built in.
	p, err = providers(nil)
	require.NoError(t, err)
	require.Nil(t, p.Email)
	require.Nil(t, p.Push)
	require.Nil(t, p.SMS)
	require.True(t, p.Templates.Has("new_message"))
}

func TestNotifyConfigProblemsNameTheVariable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "new_message.push.title.tmpl"), []byte("{{.Nope}}"), 0o600))
	env := map[string]string{
		"SMTP_HOST": "127.0.0.1", "SMTP_USERNAME": "u", "SMTP_FROM": "not-an-address",
		"PUSH_PROJECT_ID": "proj", "PUSH_BASE_URL": "http://user:hunter2@127.0.0.1",
		"SMS_ACCOUNT_SID": "AC1", "SMS_AUTH_TOKEN": "sms-token-secret", "SMS_FROM": "12345",
		"NOTIFY_TEMPLATES_DIR": dir,
	}
	_, err := providers(env)
	require.Error(t, err)
	for _, want := range []string{"SMTP_FROM:", "PUSH_BASE_URL:", "SMS_FROM:", "NOTIFY_TEMPLATES_DIR:", "new_message.push.title.tmpl"} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, err.Error(), "sms-token-secret")
}

func TestPushServiceAccountFromEnv(t *testing.T) {
	t.Parallel()
	srv, err := notifytest.NewPushServer("", "proj", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	key, err := srv.NewServiceAccount(time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	file := filepath.Join(dir, "service-account.json")
	require.NoError(t, os.WriteFile(file, key, 0o600))
	env := map[string]string{"PUSH_PROJECT_ID": "proj", "PUSH_BASE_URL": srv.URL, "PUSH_SERVICE_ACCOUNT_FILE": file}
	p, err := providers(env)
	require.NoError(t, err)
	_, err = p.Push.Push(context.Background(), notify.PushMessage{Token: "tok", Title: "t", Body: "b"})
	require.NoError(t, err)
	require.Equal(t, 1, srv.TokenRequests())
	require.True(t, srv.Requests()[0].Authorized)

	broken := filepath.Join(dir, "broken.json")
	require.NoError(t, os.WriteFile(broken, []byte(`{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`), 0o600))
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"missing file": {map[string]string{"PUSH_SERVICE_ACCOUNT_FILE": filepath.Join(dir, "absent.json")}, "PUSH_SERVICE_ACCOUNT_FILE: "},
		"bad key":      {map[string]string{"PUSH_SERVICE_ACCOUNT_FILE": broken}, "PUSH_SERVICE_ACCOUNT_FILE: its private_key is not an RSA private key"},
		"both":         {map[string]string{"PUSH_SERVICE_ACCOUNT_FILE": file, "PUSH_CREDENTIAL": "bearer"}, "PUSH_CREDENTIAL: must be empty when PUSH_SERVICE_ACCOUNT_FILE is set"},
	} {
		tc.env["PUSH_PROJECT_ID"] = "proj"
		p, err := providers(tc.env)
		require.ErrorContains(t, err, tc.want, name)
		require.NotContains(t, err.Error(), "PRIVATE KEY", name)
		require.Nil(t, p.Push, name)
	}
}
