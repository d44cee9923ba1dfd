package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/config"
)

func TestNotifyProvidersFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "smtp-pw", "SMTP_FROM": "n <n@example.com>",
		"PUSH_PROJECT_ID": "proj", "PUSH_BASE_URL": "http://127.0.0.1:9", "PUSH_CREDENTIAL": "bearer",
		"SMS_ACCOUNT_SID": "AC1", "SMS_BASE_URL": "http://127.0.0.1:9", "SMS_AUTH_TOKEN": "tok", "SMS_FROM": "+15005550006",
	}
	r := config.NewReader(func(k string) string { return env[k] })
	p := r.Notify()
	require.NoError(t, r.Err())
	require.NotNil(t, p.Email)
	require.NotNil(t, p.Push)
	require.NotNil(t, p.SMS)
	require.NotNil(t, p.Templates)

	// Nothing set: every external channel disabled, templates built in.
	r = config.NewReader(func(string) string { return "" })
	p = r.Notify()
	require.NoError(t, r.Err())
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
	r := config.NewReader(func(k string) string { return env[k] })
	r.Notify()
	err := r.Err()
	require.Error(t, err)
	for _, want := range []string{"SMTP_FROM:", "PUSH_BASE_URL:", "SMS_FROM:", "NOTIFY_TEMPLATES_DIR:", "new_message.push.title.tmpl"} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, err.Error(), "sms-token-secret")
}
