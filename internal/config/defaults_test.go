package config_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/groups"
	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/outbox"
)

// TestDefaultsAgreeWithTheirPackages: the list writes the defaults that the
// packages using them also fall back to on a zero Config; they must agree,
// so the documented default is the one a library user gets too.
func TestDefaultsAgreeWithTheirPackages(t *testing.T) {
	t.Parallel()
	byName := map[config.Var]config.Setting{}
	for _, s := range config.Settings() {
		byName[s.Name] = s
	}
	// duration writes d as the list does: 5m and 1h, not 5m0s and 1h0m0s.
	duration := func(d time.Duration) string {
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
	for v, want := range map[config.Var]string{
		config.DatabaseMaxConns:          strconv.Itoa(db.DefaultMaxConns),
		config.RedisPrefix:               fanout.DefaultPrefix,
		config.MaxContentBytes:           strconv.Itoa(outbox.DefaultMaxContentBytes),
		config.GroupMaxMembers:           strconv.Itoa(groups.DefaultMaxMembers),
		config.DeliveryBackstopDelay:     duration(outbox.DefaultDeliveryBackstop),
		config.RunnerShutdownTimeout:     duration(runner.DefaultShutdownTimeout),
		config.RunnerLeaseTTL:            duration(runner.DefaultLeaseTTL),
		config.RiverFetchCooldown:        duration(runner.DefaultFetchCooldown),
		config.RiverFetchPollInterval:    duration(runner.DefaultFetchPollInterval),
		config.RiverRescueStuckJobsAfter: duration(runner.DefaultRescueStuckJobsAfter),
		config.RiverCompletedRetention:   duration(runner.DefaultCompletedRetention),
		config.RiverCancelledRetention:   duration(runner.DefaultCancelledRetention),
		config.RiverDiscardedRetention:   duration(runner.DefaultDiscardedRetention),
		config.WSSendBuffer:              strconv.Itoa(gateway.DefaultSendBuffer),
		config.GatewayDBTimeout:          duration(gateway.DefaultDBTimeout),
		config.GatewayShutdownTimeout:    duration(gateway.DefaultShutdownTimeout),
		config.NotifyProviderTimeout:     duration(notify.DefaultTimeout),
		config.PushBaseURL:               notify.DefaultPushBaseURL,
		config.SMSBaseURL:                notify.DefaultSMSBaseURL,
	} {
		require.Equal(t, want, byName[v].Default, "%s", v)
	}
	require.Equal(t, duration(runner.DefaultJobTimeout), byName[config.RiverRescueStuckJobsAfter].Min,
		"River's rescue never comes before a job's own timeout")
	require.Contains(t, byName[config.AuthSecret].Format, strconv.Itoa(auth.MinSecretBytes))
}
