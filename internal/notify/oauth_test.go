package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/notify/notifytest"
)

// newAccountPush returns a push server without a fixed credential, a
// service account key it mints tokens for (valid for lifetime), and a
// provider configured with that key.
func newAccountPush(t *testing.T, lifetime time.Duration) (*notifytest.PushServer, []byte, *notify.FCM) {
	t.Helper()
	srv, err := notifytest.NewPushServer("", "proj-1", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	key, err := srv.NewServiceAccount(lifetime)
	require.NoError(t, err)
	p, err := notify.NewFCM(notify.PushConfig{BaseURL: srv.URL, ProjectID: "proj-1", ServiceAccountJSON: key, Timeout: 2 * time.Second})
	require.NoError(t, err)
	return srv, key, p
}

func push(p *notify.FCM) error {
	_, err := p.Push(context.Background(), notify.PushMessage{Token: "tok", Title: "t", Body: "b"})
	return err
}

func TestServiceAccountTokenIsMintedOnceAndReused(t *testing.T) {
	t.Parallel()
	srv, _, p := newAccountPush(t, time.Hour)
	require.Zero(t, srv.TokenRequests(), "no request before the first push")

	require.NoError(t, push(p))
	require.NoError(t, push(p))
	require.Equal(t, 1, srv.TokenRequests(), "one token serves both pushes")
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	require.True(t, reqs[0].Authorized)
	require.True(t, reqs[1].Authorized)
}

func TestServiceAccountTokenIsRenewedBeforeItExpires(t *testing.T) {
	t.Parallel()
	// Tokens valid for 5 s are within the 10 s renewal margin at once:
	// every push mints a new one rather than send one about to expire.
	srv, _, p := newAccountPush(t, 5*time.Second)
	require.NoError(t, push(p))
	require.NoError(t, push(p))
	require.Equal(t, 2, srv.TokenRequests())
}

func TestRefusedTokenIsDroppedAndTheRetryMintsAnother(t *testing.T) {
	t.Parallel()
	srv, _, p := newAccountPush(t, time.Hour)
	require.NoError(t, push(p))
	srv.RevokeTokens()

	err := push(p)
	require.Error(t, err)
	require.False(t, errors.Is(err, notify.ErrPermanent), "a refused token is worth one more try: %v", err)
	require.NoError(t, push(p), "the retry mints a new token")
	require.Equal(t, 2, srv.TokenRequests())
}

func TestTokenEndpointRefusalFailsThePushTransiently(t *testing.T) {
	t.Parallel()
	srv, err := notifytest.NewPushServer("", "proj-1", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	// A key the server never issued: its signature cannot be checked.
	other, err := notifytest.NewPushServer("", "proj-1", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	stranger, err := other.NewServiceAccount(time.Hour)
	require.NoError(t, err)
	var key map[string]string
	require.NoError(t, json.Unmarshal(stranger, &key))
	key["token_uri"] = srv.URL + "/token"
	raw, err := json.Marshal(key)
	require.NoError(t, err)

	p, err := notify.NewFCM(notify.PushConfig{BaseURL: srv.URL, ProjectID: "proj-1", ServiceAccountJSON: raw})
	require.NoError(t, err)
	err = push(p)
	require.Error(t, err)
	require.False(t, errors.Is(err, notify.ErrPermanent))
	require.ErrorContains(t, err, "access token")
	require.ErrorContains(t, err, "invalid_grant")
	require.NotContains(t, err.Error(), "PRIVATE KEY")
	require.Empty(t, srv.Requests(), "no push is sent without a token")
	require.Zero(t, srv.TokenRequests())
}

func TestServiceAccountKeysAreValidated(t *testing.T) {
	t.Parallel()
	srv, err := notifytest.NewPushServer("", "proj-1", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	good, err := srv.NewServiceAccount(time.Hour)
	require.NoError(t, err)
	edit := func(field, value string) []byte {
		var key map[string]string
		require.NoError(t, json.Unmarshal(good, &key))
		if value == "" {
			delete(key, field)
		} else {
			key[field] = value
		}
		raw, err := json.Marshal(key)
		require.NoError(t, err)
		return raw
	}
	cases := map[string]struct {
		cfg  notify.PushConfig
		want string
	}{
		"both credentials":  {notify.PushConfig{Credential: "c", ServiceAccountJSON: good}, "Credential must be empty"},
		"not JSON":          {notify.PushConfig{ServiceAccountJSON: []byte("not json")}, "ServiceAccountJSON is not a Google service account key"},
		"another type":      {notify.PushConfig{ServiceAccountJSON: edit("type", "authorized_user")}, "ServiceAccountJSON is not a Google service account key"},
		"no email":          {notify.PushConfig{ServiceAccountJSON: edit("client_email", "")}, "client_email"},
		"token URI not web": {notify.PushConfig{ServiceAccountJSON: edit("token_uri", "file:///etc/passwd")}, "token_uri must be an http or https URL"},
		"key not PEM":       {notify.PushConfig{ServiceAccountJSON: edit("private_key", "MIIEvQIBADANBg")}, "private_key"},
		"key not a key": {notify.PushConfig{ServiceAccountJSON: edit("private_key",
			"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, "private_key is not an RSA private key"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.BaseURL, tc.cfg.ProjectID = srv.URL, "proj-1"
			_, err := notify.NewFCM(tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "MII", "the error quotes no key material")
		})
	}
}
