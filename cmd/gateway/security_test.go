package main

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/auth"
)

func TestMetricsAreNeverOpenOnThePublicListener(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(map[string]string{"AUTH_SECRET": secret}))
	require.NoError(t, err)
	require.True(t, s.Gateway.MetricsOff, "no token and no separate address: not served")

	s, err = loadSettings(env(map[string]string{"AUTH_SECRET": secret, "METRICS_TOKEN": "metrics-token-0123456789"}))
	require.NoError(t, err)
	require.False(t, s.Gateway.MetricsOff)
	require.Empty(t, s.Gateway.MetricsAddr)
	require.Equal(t, "metrics-token-0123456789", s.Gateway.MetricsToken)

	s, err = loadSettings(env(map[string]string{"AUTH_SECRET": secret, "GATEWAY_METRICS_ADDR": "127.0.0.1:9091"}))
	require.NoError(t, err)
	require.False(t, s.Gateway.MetricsOff)
	require.Equal(t, "127.0.0.1:9091", s.Gateway.MetricsAddr)

	_, err = loadSettings(env(map[string]string{"AUTH_SECRET": secret, "METRICS_TOKEN": "short-metrics", "GATEWAY_METRICS_ADDR": "nope"}))
	require.ErrorContains(t, err, "METRICS_TOKEN")
	require.ErrorContains(t, err, "GATEWAY_METRICS_ADDR")
	require.NotContains(t, err.Error(), "short-metrics", "secrets never appear in errors")
}

func TestRateLimitSettings(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(map[string]string{"AUTH_SECRET": secret, "REDIS_PREFIX": "p:"}))
	require.NoError(t, err)
	require.Equal(t, 20, s.RateLimit.PerSecond, "RATE_LIMIT_PER_SECOND's default")
	require.Equal(t, 40, s.RateLimit.Burst, "twice the rate")
	require.Equal(t, "p:", s.RateLimit.Prefix, "limiter keys live under REDIS_PREFIX")

	s, err = loadSettings(env(map[string]string{"AUTH_SECRET": secret, "RATE_LIMIT_PER_SECOND": "5", "RATE_LIMIT_BURST": "7"}))
	require.NoError(t, err)
	require.Equal(t, 5, s.RateLimit.PerSecond)
	require.Equal(t, 7, s.RateLimit.Burst)

	s, err = loadSettings(env(map[string]string{"AUTH_SECRET": secret, "RATE_LIMIT_PER_SECOND": "0"}))
	require.NoError(t, err)
	require.Zero(t, s.RateLimit.PerSecond, "0 disables")

	_, err = loadSettings(env(map[string]string{"AUTH_SECRET": secret, "RATE_LIMIT_PER_SECOND": "-1", "RATE_LIMIT_BURST": "x"}))
	require.ErrorContains(t, err, "RATE_LIMIT_PER_SECOND")
	require.ErrorContains(t, err, "RATE_LIMIT_BURST")
}

func TestAuthIssuerAndAudienceAreRequiredWhenSet(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(map[string]string{"AUTH_SECRET": secret, "AUTH_ISSUER": "msgrunner-prod", "AUTH_AUDIENCE": "msgrunner-api"}))
	require.NoError(t, err)
	user := uuid.New()
	plain, err := auth.New([]byte(secret))
	require.NoError(t, err)
	tok, err := plain.Mint(user, time.Hour)
	require.NoError(t, err)
	_, err = s.Gateway.Auth.Verify(tok)
	require.ErrorIs(t, err, auth.ErrWrongIssuer)
	bound, err := auth.New([]byte(secret), auth.WithIssuer("msgrunner-prod"), auth.WithAudience("msgrunner-api"))
	require.NoError(t, err)
	tok, err = bound.Mint(user, time.Hour)
	require.NoError(t, err)
	got, err := s.Gateway.Auth.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, user, got)
}
