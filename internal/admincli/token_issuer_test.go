package admincli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/auth"
)

// TestTokenCarriesTheGatewaysIssuerAndAudience: with AUTH_ISSUER and
// AUTH_AUDIENCE set alike on both, tokens from `admin token` are accepted
// by a gateway that requires them, and tokens without are not.
func TestTokenCarriesTheGatewaysIssuerAndAudience(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("k", 32)
	user := "3f1e8a52-6b1c-4c55-9d7e-0a6f2b9c1d11"
	mint := func(kv map[string]string) string {
		var out bytes.Buffer
		kv["AUTH_SECRET"] = secret
		require.NoError(t, run(context.Background(), []string{"token", "--user", user}, env(kv), &out, io.Discard))
		return strings.TrimSpace(out.String())
	}
	gw, err := auth.New([]byte(secret), auth.WithIssuer("msgrunner-prod"), auth.WithAudience("msgrunner-api"))
	require.NoError(t, err)

	got, err := gw.Verify(mint(map[string]string{"AUTH_ISSUER": "msgrunner-prod", "AUTH_AUDIENCE": "msgrunner-api"}))
	require.NoError(t, err)
	require.Equal(t, user, got.String())
	_, err = gw.Verify(mint(map[string]string{}))
	require.ErrorIs(t, err, auth.ErrWrongIssuer)
	_, err = gw.Verify(mint(map[string]string{"AUTH_ISSUER": "msgrunner-staging", "AUTH_AUDIENCE": "msgrunner-api"}))
	require.ErrorIs(t, err, auth.ErrWrongIssuer)
}
