package config

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reader returns a Reader over kv that also knows the ad-hoc settings
// decl, so the kinds can be tested apart from the list.
func reader(kv map[string]string, decl ...Setting) *Reader {
	r := NewReader(func(k string) string { return kv[k] })
	for _, s := range decl {
		r.declared[s.Name] = s
	}
	return r
}

// kinds returns ad-hoc settings of several kinds, apart from the list.
func kinds() []Setting {
	return []Setting{
		{Name: "N", Kind: KindInt, Default: "1", Min: "0", Max: "10"},
		{Name: "UNSET", Kind: KindInt, Default: "3", Min: "0", Max: "10"},
		{Name: "D", Kind: KindDuration, Default: "1s", Min: "0s", Max: "1h"},
		{Name: "B", Kind: KindBool, Default: "false"},
		{Name: "A", Kind: KindAddr, Default: ":1"},
		{Name: "S", Kind: KindString, Default: "y"},
	}
}

func TestValuesAndDefaults(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"N": " 7 ", "D": "250ms", "B": "yes", "A": "127.0.0.1:0", "S": "x"},
		kinds()...)
	require.Equal(t, 7, r.integer("N"))
	require.Equal(t, 3, r.integer("UNSET"))
	require.Equal(t, 250*time.Millisecond, r.duration("D"))
	require.True(t, r.boolean("B"))
	require.Equal(t, "127.0.0.1:0", r.str("A"))
	require.Equal(t, "x", r.str("S"))
	require.Equal(t, DefaultDatabaseURL, r.DatabaseURL())
	require.Equal(t, Log{Level: slog.LevelInfo, Format: "json"}, r.log())
	require.NoError(t, r.Err())
}

func TestProblemsAreCollectedAndNamed(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"N": "11", "D": "soon", "B": "maybe", "A": "8080", "LOG_FORMAT": "xml", "LOG_LEVEL": "loud"},
		kinds()...)
	require.Equal(t, 1, r.integer("N"), "an invalid value reads as the default")
	require.Equal(t, time.Second, r.duration("D"))
	require.False(t, r.boolean("B"))
	require.Equal(t, ":1", r.str("A"))
	r.log()
	err := r.Err()
	for _, want := range []string{"N: 11 is out of range [0, 10]", `D: "soon" is not a duration`, `B: "maybe" is not a boolean`,
		`A: "8080" is not a listen address`, `LOG_FORMAT: "xml" is not json or text`, "LOG_LEVEL: must be debug, info, warn or error"} {
		require.ErrorContains(t, err, want)
	}
}

func TestLoopbackAddrRefusesWhatIsNotLoopback(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:0"} {
		r := reader(map[string]string{"PPROF_ADDR": ok})
		require.Equal(t, ok, r.str(PprofAddr))
		require.NoError(t, r.Err(), ok)
	}
	require.Empty(t, reader(nil).str(PprofAddr), "unset: no listener")
	for _, bad := range []string{":6060", "0.0.0.0:6060", "10.0.0.5:6060", "example.com:6060", "127.0.0.1"} {
		r := reader(map[string]string{"PPROF_ADDR": bad})
		require.Empty(t, r.str(PprofAddr))
		require.ErrorContains(t, r.Err(), "PPROF_ADDR", bad)
	}
}

func TestReadingAnUndeclaredOrMistypedSettingPanics(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "config: NOPE is not declared in settingList", func() { reader(nil).str("NOPE") })
	require.Panics(t, func() { reader(nil).integer(RunnerAddr) }, "RUNNER_ADDR is an address, not an integer")
}

func TestVariantsApplyToTheirBinaries(t *testing.T) {
	t.Parallel()
	r := reader(nil)
	require.Equal(t, 20, r.database(RunnerBinary).MaxConns)
	require.Equal(t, 8, r.database(AdminServeBinary).MaxConns)

	r = reader(map[string]string{"DATABASE_MAX_CONNS": "3"})
	require.Equal(t, 3, r.database(AdminServeBinary).MaxConns, "admin serve allows 2–1000")
	require.NoError(t, r.Err())
	require.Equal(t, 20, r.database(GatewayBinary).MaxConns, "the services allow 4–1000")
	require.ErrorContains(t, r.Err(), "DATABASE_MAX_CONNS: 3 is out of range [4, 1000]")

	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
	require.Equal(t, "msgrunner-runner", reader(env).tracing(RunnerBinary).ServiceName)
	require.Equal(t, "msgrunner-admin", reader(env).tracing(AdminServeBinary).ServiceName)
	require.Equal(t, Tracing{}, reader(nil).tracing(GatewayBinary), "no endpoint: tracing off")
}

func TestQueueSettingsAreNamedPerQueue(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{"QUEUE_MESSAGE_DELIVERY_WORKERS": "40", "QUEUE_MESSAGE_CLEANUP_TIMEOUT": "forever"})
	qs := r.queues()
	require.Equal(t, "message-delivery", qs[0].Name)
	require.Equal(t, 40, qs[0].Workers)
	require.ErrorContains(t, r.Err(), `QUEUE_MESSAGE_CLEANUP_TIMEOUT: "forever" is not a duration`)
}

func TestSecretsAreNeverQuoted(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	for _, s := range Settings() {
		if s.Kind == KindSecret {
			env[string(s.Name)] = "hunter2"
		}
	}
	env["SMTP_HOST"], env["PUSH_PROJECT_ID"], env["SMS_ACCOUNT_SID"] = "127.0.0.1", "p", "AC1"
	r := reader(env)
	r.Gateway()
	r.AdminServe()
	r.Runner()
	require.ErrorContains(t, r.Err(), "METRICS_TOKEN: must be at least 16 characters")
	require.ErrorContains(t, r.Err(), "ADMIN_TOKEN: must be at least 16 characters")
	require.NotContains(t, r.Err().Error(), "hunter2")
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 2 * time.Millisecond: "2ms", 30 * time.Second: "30s", 5 * time.Minute: "5m",
		90 * time.Minute: "1h30m", time.Hour: "1h", 168 * time.Hour: "168h", 61 * time.Second: "1m1s",
	} {
		require.Equal(t, want, formatDuration(d))
		got, err := time.ParseDuration(want)
		require.NoError(t, err)
		require.Equal(t, d, got)
	}
}

func TestRedisClusterAddrsSelectTheClusterAndExcludeASingleServer(t *testing.T) {
	t.Parallel()
	r := reader(map[string]string{
		"REDIS_CLUSTER_ADDRS": " 10.0.0.1:6379, redis-2.internal:6380 ,[::1]:6381", "REDIS_USERNAME": "app", "REDIS_PASSWORD": "pw",
		"REDIS_PORT": "6390", "REDIS_QUEUE_DB": "3",
	})
	c := r.redis()
	require.NoError(t, r.Err())
	require.Equal(t, Redis{ClusterAddrs: []string{"10.0.0.1:6379", "redis-2.internal:6380", "[::1]:6381"},
		Username: "app", Password: "pw", Prefix: "msgrunner:"}, c, "the port and database of a single server are not read")

	r = reader(map[string]string{"REDIS_HOST": "10.0.0.9"})
	require.Empty(t, r.redis().ClusterAddrs, "unset: one server")
	require.NoError(t, r.Err())

	for _, other := range []string{"REDIS_URL", "REDIS_HOST"} {
		env := map[string]string{"REDIS_CLUSTER_ADDRS": "10.0.0.1:6379", "REDIS_URL": "redis://10.0.0.9:6379/0", "REDIS_HOST": "10.0.0.9"}
		for _, v := range []string{"REDIS_URL", "REDIS_HOST"} {
			if v != other {
				delete(env, v)
			}
		}
		r := reader(env)
		r.redis()
		require.ErrorContains(t, r.Err(), "REDIS_CLUSTER_ADDRS: cannot be set together with "+other)
	}

	for bad, want := range map[string]string{
		"10.0.0.1":               `"10.0.0.1" is not a host:port address`,
		"10.0.0.1:6379,10.0.0.2": `"10.0.0.2" is not a host:port address`,
		":6379":                  `":6379" is not a host:port address`,
		"10.0.0.1:redis":         `"10.0.0.1:redis" is not a host:port address`,
		"10.0.0.1:70000":         `"10.0.0.1:70000" is not a host:port address`,
		"redis://10.0.0.1:6379":  `"redis://10.0.0.1:6379" is not a host:port address`,
		" , ":                    "lists no address",
	} {
		r := reader(map[string]string{"REDIS_CLUSTER_ADDRS": bad, "REDIS_PASSWORD": "hunter2"})
		r.redis()
		require.ErrorContains(t, r.Err(), "REDIS_CLUSTER_ADDRS: "+want, bad)
		require.NotContains(t, r.Err().Error(), "hunter2")
	}
}

func TestEveryServerReadsTheClusterSetting(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REDIS_CLUSTER_ADDRS": "10.0.0.1:6379", "REDIS_URL": "redis://10.0.0.9:6379/0", "AUTH_SECRET": "x"}
	for name, read := range map[string]func(r *Reader) Redis{
		"runner":  func(r *Reader) Redis { return r.Runner().Redis },
		"gateway": func(r *Reader) Redis { return r.Gateway().Redis },
	} {
		r := reader(env)
		require.Equal(t, []string{"10.0.0.1:6379"}, read(r).ClusterAddrs, name)
		require.ErrorContains(t, r.Err(), "REDIS_CLUSTER_ADDRS: cannot be set together with REDIS_URL", name)
	}
}
