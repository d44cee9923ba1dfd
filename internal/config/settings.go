package config

import (
	"strconv"

	"github.com/msgrunner/msgrunner/jobs"
)

// The environment variables, one constant each; settingList declares
// them. docs/configuration.md is generated from the list
// (`make generate-config-doc`).
const (
	DatabaseURL        Var = "DATABASE_URL"
	DatabaseMaxConns   Var = "DATABASE_MAX_CONNS"
	DatabaseReadURL    Var = "DATABASE_READ_URL"
	DatabaseReadMaxLag Var = "DATABASE_READ_MAX_LAG"

	RedisURL          Var = "REDIS_URL"
	RedisHost         Var = "REDIS_HOST"
	RedisPort         Var = "REDIS_PORT"
	RedisUsername     Var = "REDIS_USERNAME"
	RedisPassword     Var = "REDIS_PASSWORD"
	RedisQueueDB      Var = "REDIS_QUEUE_DB"
	RedisPrefix       Var = "REDIS_PREFIX"
	RedisClusterAddrs Var = "REDIS_CLUSTER_ADDRS"

	LogLevel                 Var = "LOG_LEVEL"
	LogFormat                Var = "LOG_FORMAT"
	OTELExporterOTLPEndpoint Var = "OTEL_EXPORTER_OTLP_ENDPOINT"
	OTELServiceName          Var = "OTEL_SERVICE_NAME"
	OTELTracesSamplePercent  Var = "OTEL_TRACES_SAMPLE_PERCENT"
	PprofAddr                Var = "PPROF_ADDR"

	RunnerAddr                         Var = "RUNNER_ADDR"
	RunnerID                           Var = "RUNNER_ID"
	RunnerShutdownTimeout              Var = "RUNNER_SHUTDOWN_TIMEOUT"
	RunnerAsyncCommit                  Var = "RUNNER_ASYNC_COMMIT"
	RunnerLeaseTTL                     Var = "RUNNER_LEASE_TTL"
	RiverLogLevel                      Var = "RIVER_LOG_LEVEL"
	RiverFetchCooldown                 Var = "RIVER_FETCH_COOLDOWN"
	RiverFetchPollInterval             Var = "RIVER_FETCH_POLL_INTERVAL"
	RiverRescueStuckJobsAfter          Var = "RIVER_RESCUE_STUCK_JOBS_AFTER"
	RiverCompletedRetention            Var = "RIVER_COMPLETED_RETENTION"
	RiverCancelledRetention            Var = "RIVER_CANCELLED_RETENTION"
	RiverDiscardedRetention            Var = "RIVER_DISCARDED_RETENTION"
	QueueWorkers                       Var = "QUEUE_<NAME>_WORKERS"
	QueueRetryBase                     Var = "QUEUE_<NAME>_RETRY_BASE"
	QueueTimeout                       Var = "QUEUE_<NAME>_TIMEOUT"
	QueueFetchCooldown                 Var = "QUEUE_<NAME>_FETCH_COOLDOWN"
	DeliveryBackstopDelay              Var = "DELIVERY_BACKSTOP_DELAY"
	DeliverySweepInterval              Var = "DELIVERY_SWEEP_INTERVAL"
	IndexSweepInterval                 Var = "INDEX_SWEEP_INTERVAL"
	CleanupSchedule                    Var = "CLEANUP_SCHEDULE"
	CleanupTypes                       Var = "CLEANUP_TYPES"
	CleanupRetentionDays               Var = "CLEANUP_RETENTION_DAYS"
	CleanupBatchSize                   Var = "CLEANUP_BATCH_SIZE"
	JobHistoryInterval                 Var = "JOB_HISTORY_INTERVAL"
	JobHistoryHours                    Var = "JOB_HISTORY_HOURS"
	FailedJobsRetentionDays            Var = "FAILED_JOBS_RETENTION_DAYS"
	MaxContentBytes                    Var = "MAX_CONTENT_BYTES"
	SearchLanguage                     Var = "SEARCH_LANGUAGE"
	GatewayAddr                        Var = "GATEWAY_ADDR"
	GatewayAllowedOrigins              Var = "GATEWAY_ALLOWED_ORIGINS"
	GatewayDBTimeout                   Var = "GATEWAY_DB_TIMEOUT"
	GroupMaxMembers                    Var = "GROUP_MAX_MEMBERS"
	GatewayShutdownTimeout             Var = "GATEWAY_SHUTDOWN_TIMEOUT"
	WSSendBuffer                       Var = "WS_SEND_BUFFER"
	MetricsToken                       Var = "METRICS_TOKEN"
	GatewayMetricsAddr                 Var = "GATEWAY_METRICS_ADDR"
	RateLimitPerSecond                 Var = "RATE_LIMIT_PER_SECOND"
	RateLimitBurst                     Var = "RATE_LIMIT_BURST"
	AttachmentMaxBytes                 Var = "ATTACHMENT_MAX_BYTES"
	AttachmentTTL                      Var = "ATTACHMENT_TTL"
	AuthSecret                         Var = "AUTH_SECRET"
	AuthIssuer                         Var = "AUTH_ISSUER"
	AuthAudience                       Var = "AUTH_AUDIENCE"
	EncryptionKeys                     Var = "ENCRYPTION_KEYS"
	EncryptionActiveKey                Var = "ENCRYPTION_ACTIVE_KEY"
	ExportDir                          Var = "EXPORT_DIR"
	AttachmentsDir                     Var = "ATTACHMENTS_DIR"
	SMTPHost                           Var = "SMTP_HOST"
	SMTPPort                           Var = "SMTP_PORT"
	SMTPUsername                       Var = "SMTP_USERNAME"
	SMTPPassword                       Var = "SMTP_PASSWORD"
	SMTPFrom                           Var = "SMTP_FROM"
	SMTPHelo                           Var = "SMTP_HELO"
	SMTPRequireTLS                     Var = "SMTP_REQUIRE_TLS"
	SMTPCAFile                         Var = "SMTP_CA_FILE"
	PushProjectID                      Var = "PUSH_PROJECT_ID"
	PushBaseURL                        Var = "PUSH_BASE_URL"
	PushServiceAccountFile             Var = "PUSH_SERVICE_ACCOUNT_FILE"
	PushCredential                     Var = "PUSH_CREDENTIAL"
	SMSAccountSID                      Var = "SMS_ACCOUNT_SID"
	SMSBaseURL                         Var = "SMS_BASE_URL"
	SMSAuthToken                       Var = "SMS_AUTH_TOKEN"
	SMSFrom                            Var = "SMS_FROM"
	NotifyProviderTimeout              Var = "NOTIFY_PROVIDER_TIMEOUT"
	NotifyTemplatesDir                 Var = "NOTIFY_TEMPLATES_DIR"
	AdminAddr                          Var = "ADMIN_ADDR"
	AdminToken                         Var = "ADMIN_TOKEN"
	AdminViewerToken                   Var = "ADMIN_VIEWER_TOKEN"
	AdminInsecureDev                   Var = "ADMIN_INSECURE_DEV"
	AdminHealthWindow                  Var = "ADMIN_HEALTH_WINDOW"
	AdminHealthDegradedFailurePercent  Var = "ADMIN_HEALTH_DEGRADED_FAILURE_PERCENT"
	AdminHealthUnhealthyFailurePercent Var = "ADMIN_HEALTH_UNHEALTHY_FAILURE_PERCENT"
	AdminHealthDegradedWait            Var = "ADMIN_HEALTH_DEGRADED_WAIT"
	AdminHealthUnhealthyWait           Var = "ADMIN_HEALTH_UNHEALTHY_WAIT"
	User                               Var = "USER"
	FakeProviders                      Var = "FAKE_PROVIDERS"
	TestDatabaseURL                    Var = "TEST_DATABASE_URL"
	TestRedisURL                       Var = "TEST_REDIS_URL"
)

// DefaultDatabaseURL is the DATABASE_URL used when none is set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/msgrunner?sslmode=disable"

// The groups of settings, in the order docs/configuration.md lists them.
const (
	groupDatabase      = "Database"
	groupRedis         = "Redis"
	groupObservability = "Logs, tracing and profiling"
	groupRunner        = "Runner"
	groupQueues        = "Job queues"
	groupPeriodic      = "Periodic jobs"
	groupMessages      = "Messages and search"
	groupGateway       = "Gateway"
	groupAuth          = "Bearer tokens"
	groupEncryption    = "Encryption, exports and attachments"
	groupNotify        = "Notifications"
	groupAdmin         = "Admin server and CLI"
	groupDevelopment   = "Development and tests"
)

// Shorthands for the Binaries of the list.
const (
	services = RunnerBinary | GatewayBinary
	servers  = RunnerBinary | GatewayBinary | AdminServeBinary
)

// Settings returns every declared environment variable, grouped as
// docs/configuration.md lists them. The slice is the caller's.
func Settings() []Setting { return settingList() }

// settingList is the one list of settings. Defaults owned by jobs (the
// queue table, sweep intervals, cleanup and history arguments) are taken
// from it; the others are written here, and a test checks they agree with
// the defaults of the packages that use them.
func settingList() []Setting {
	return []Setting{
		{Name: DatabaseURL, Group: groupDatabase, Kind: KindDatabaseURL, Default: DefaultDatabaseURL,
			Binaries: servers | AdminBinary | Tests,
			Doc:      "PostgreSQL, as a URL or in `key=value` form"},
		{Name: DatabaseMaxConns, Group: groupDatabase, Kind: KindInt, Default: "20", Min: "4", Max: "1000",
			Variants: []Variant{{Binaries: AdminServeBinary, Default: "8", Min: "2"}},
			Binaries: servers,
			Doc:      "connection pool size per process (the other admin commands use 4 connections); much more than about 20 only adds contention on a small Postgres"},
		{Name: DatabaseReadURL, Group: groupDatabase, Kind: KindDatabaseURL, DefaultNote: "every read on `DATABASE_URL`",
			Binaries: GatewayBinary | AdminServeBinary,
			Doc:      "a streaming standby for reads that tolerate lag (the gateway's search and full history pages, the admin server's reports); bypassed while it is down or lags past `DATABASE_READ_MAX_LAG`"},
		{Name: DatabaseReadMaxLag, Group: groupDatabase, Kind: KindDuration, Default: "5s", Min: "100ms", Max: "1h",
			Binaries: GatewayBinary | AdminServeBinary,
			Doc:      "how far `DATABASE_READ_URL` may be behind the primary and still serve reads"},

		{Name: RedisURL, Group: groupRedis, Kind: KindURL, Format: "`redis://[user:pass@]host:port/db`, or `rediss://`",
			Binaries: services | Tests,
			Doc:      "Redis; wins over `REDIS_HOST`, `REDIS_PORT`, `REDIS_USERNAME`, `REDIS_PASSWORD` and `REDIS_QUEUE_DB`"},
		{Name: RedisHost, Group: groupRedis, Kind: KindString, Default: "127.0.0.1", Binaries: services,
			Doc: "Redis host when `REDIS_URL` is unset (the earlier platform's variable)"},
		{Name: RedisPort, Group: groupRedis, Kind: KindInt, Default: "6379", Min: "1", Max: "65535", Binaries: services,
			Doc: "Redis port when `REDIS_URL` is unset"},
		{Name: RedisUsername, Group: groupRedis, Kind: KindString, Binaries: services,
			Doc: "Redis ACL user when `REDIS_URL` is unset"},
		{Name: RedisPassword, Group: groupRedis, Kind: KindSecret, Binaries: services,
			Doc: "Redis ACL password when `REDIS_URL` is unset"},
		{Name: RedisQueueDB, Group: groupRedis, Kind: KindInt, Default: "0", Min: "0", Max: "15", Binaries: services,
			Doc: "Redis database number when `REDIS_URL` is unset"},
		{Name: RedisClusterAddrs, Group: groupRedis, Kind: KindList, Format: "`host:port,host:port,...`", DefaultNote: "single server",
			Binaries: services,
			Doc:      "seed nodes of a Redis Cluster: selects the cluster client, with `REDIS_USERNAME` and `REDIS_PASSWORD`; not with `REDIS_URL` or `REDIS_HOST`"},
		{Name: RedisPrefix, Group: groupRedis, Kind: KindString, Default: "msgrunner:", Binaries: services,
			Doc: "prefix of every Redis key and channel; runners and gateways must agree"},

		{Name: LogLevel, Group: groupObservability, Kind: KindLogLevel, Default: "info", Values: []string{"debug", "info", "warn", "error"},
			Binaries: servers, Doc: "least level logged"},
		{Name: LogFormat, Group: groupObservability, Kind: KindEnum, Default: "json", Values: []string{"json", "text"},
			DefaultNote: "`text` under `make run`", Binaries: servers,
			Doc: "log handler: JSON lines or text; logs never hold message content, tokens or keys"},
		{Name: OTELExporterOTLPEndpoint, Group: groupObservability, Kind: KindURL, DefaultNote: "tracing off", Binaries: servers,
			Doc: "OTLP/HTTP collector that receives spans at `<endpoint>/v1/traces` ([operations: tracing](operations.md#tracing))"},
		{Name: OTELServiceName, Group: groupObservability, Kind: KindString, Binaries: servers,
			Variants: []Variant{{Binaries: RunnerBinary, Default: "msgrunner-runner"}, {Binaries: GatewayBinary, Default: "msgrunner-gateway"},
				{Binaries: AdminServeBinary, Default: "msgrunner-admin"}},
			Doc: "service name in traces"},
		{Name: OTELTracesSamplePercent, Group: groupObservability, Kind: KindInt, Default: "100", Min: "1", Max: "100", Binaries: servers,
			Doc: "percentage of traces kept"},
		{Name: PprofAddr, Group: groupObservability, Kind: KindLoopbackAddr, DefaultNote: "off", Binaries: services,
			Doc: "serve Go's runtime profiles (`/debug/pprof/`) on this address; loopback only, as it has no authentication"},

		{Name: RunnerAddr, Group: groupRunner, Kind: KindAddr, Default: ":9090", Binaries: RunnerBinary,
			Doc: "runner health server (`/healthz`, `/readyz`, `/metrics`)"},
		{Name: RunnerID, Group: groupRunner, Kind: KindString, DefaultNote: "`host_pid`", Binaries: RunnerBinary,
			Doc: "prefix of the runner's id in River's tables and `runner_leases` (a random suffix is added)"},
		{Name: RunnerShutdownTimeout, Group: groupRunner, Kind: KindDuration, Default: "25s", Min: "1s", Max: "1h", Binaries: RunnerBinary,
			Doc: "time running jobs get to finish on SIGTERM"},
		{Name: RunnerAsyncCommit, Group: groupRunner, Kind: KindBool, Default: "true", Binaries: RunnerBinary,
			Doc: "the runner's connections use `synchronous_commit=off` ([operations](operations.md#async-commit-in-the-runner))"},
		{Name: RunnerLeaseTTL, Group: groupRunner, Kind: KindDuration, Default: "15s", Min: "1s", Max: "10m", Binaries: RunnerBinary,
			Doc: "runner lease; a dead runner's jobs run again TTL + 2 s + up to min(TTL/3, 5 s) after its last renewal"},
		{Name: RiverLogLevel, Group: groupRunner, Kind: KindLogLevel, Default: "warn", Values: []string{"debug", "info", "warn", "error"},
			Binaries: RunnerBinary, Doc: "least level of River's own log lines (its producers report job counts at info every few seconds); `LOG_LEVEL` still applies"},
		{Name: RiverFetchCooldown, Group: groupRunner, Kind: KindDuration, Default: "2ms", Min: "1ms", Max: "1m", Binaries: RunnerBinary,
			Doc: "least time between two fetches of a queue"},
		{Name: RiverFetchPollInterval, Group: groupRunner, Kind: KindDuration, Default: "100ms", Min: "1ms", Max: "1h", Binaries: RunnerBinary,
			Doc: "fallback poll when no insert notification arrives"},
		{Name: RiverRescueStuckJobsAfter, Group: groupRunner, Kind: KindDuration, Default: "1h", Min: "30s", Max: "24h", Binaries: RunnerBinary,
			Doc: "River's own last-resort rescue of running jobs; runner leases rescue a dead runner's jobs first"},
		{Name: RiverCompletedRetention, Group: groupRunner, Kind: KindDuration, Default: "24h", Min: "1m", Max: "8760h", Binaries: RunnerBinary,
			Doc: "how long completed jobs are kept"},
		{Name: RiverCancelledRetention, Group: groupRunner, Kind: KindDuration, Default: "24h", Min: "1m", Max: "8760h", Binaries: RunnerBinary,
			Doc: "how long cancelled jobs are kept"},
		{Name: RiverDiscardedRetention, Group: groupRunner, Kind: KindDuration, Default: "168h", Min: "1m", Max: "8760h", Binaries: RunnerBinary,
			Doc: "how long discarded (dead-letter) jobs are kept"},

		{Name: QueueWorkers, Group: groupQueues, Kind: KindInt, Min: "1", Max: "10000", Queue: true, Binaries: RunnerBinary,
			Doc: "workers per runner for the queue"},
		{Name: QueueRetryBase, Group: groupQueues, Kind: KindDuration, Min: "1ms", Max: "24h", Queue: true, Binaries: RunnerBinary,
			Doc: "first retry delay of the queue's kinds"},
		{Name: QueueTimeout, Group: groupQueues, Kind: KindDuration, Min: "1s", Max: "24h", Queue: true, Binaries: RunnerBinary,
			Doc: "per-attempt timeout of the queue's kinds"},
		{Name: QueueFetchCooldown, Group: groupQueues, Kind: KindDuration, Min: "0s", Max: "1m", Queue: true, Binaries: RunnerBinary,
			Doc: "least time between two fetches of the queue; `0` means `RIVER_FETCH_COOLDOWN`"},

		{Name: DeliveryBackstopDelay, Group: groupPeriodic, Kind: KindDuration, Default: "2s", Min: "100ms", Max: "1h", Binaries: RunnerBinary,
			Doc: "how long a message its writer publishes itself (a gateway's send, a broadcast chunk) may stay pending before the `deliver-pending` sweep publishes it"},
		{Name: DeliverySweepInterval, Group: groupPeriodic, Kind: KindDuration, Default: formatDuration(jobs.DefaultDeliverySweep), Min: "100ms", Max: "1h",
			Binaries: RunnerBinary | AdminServeBinary, Doc: "how often River's leader runner schedules `deliver-pending`"},
		{Name: IndexSweepInterval, Group: groupPeriodic, Kind: KindDuration, Default: formatDuration(jobs.DefaultIndexSweep), Min: "100ms", Max: "1h",
			Binaries: RunnerBinary | AdminServeBinary, Doc: "how often the leader schedules `index-pending`, which indexes new plaintext messages for search"},
		{Name: CleanupSchedule, Group: groupPeriodic, Kind: KindCron, Default: "0 2 * * *", Binaries: RunnerBinary,
			Doc: "when the periodic cleanup runs (minute hour day month weekday, local time), or off"},
		{Name: CleanupTypes, Group: groupPeriodic, Kind: KindList, Default: jobs.CleanupOldMessages + "," + jobs.CleanupDeletedConversations,
			DefaultNote: "and `expired_attachments` with `ATTACHMENTS_DIR`",
			Format:      code(jobs.CleanupOldMessages) + ", " + code(jobs.CleanupDeletedConversations) + ", " + code(jobs.CleanupExpiredAttachments),
			Binaries:    RunnerBinary,
			Doc:         "which cleanups run on the schedule"},
		{Name: CleanupRetentionDays, Group: groupPeriodic, Kind: KindInt, Default: "90", Min: "1", Max: strconv.Itoa(jobs.MaxRetentionDays),
			Binaries: RunnerBinary, Doc: "the scheduled `old_messages` cleanup keeps messages younger than this many days"},
		{Name: CleanupBatchSize, Group: groupPeriodic, Kind: KindInt, Default: strconv.Itoa(jobs.DefaultCleanupBatchSize), Min: "1",
			Max: strconv.Itoa(jobs.MaxCleanupBatchSize), Binaries: RunnerBinary, Doc: "rows per transaction of the scheduled cleanups"},
		{Name: JobHistoryInterval, Group: groupPeriodic, Kind: KindDuration, Default: formatDuration(jobs.DefaultHistoryInterval), Min: "10s", Max: "1h",
			Binaries: RunnerBinary | AdminServeBinary,
			Doc:      "how often the leader schedules `job-history`, which rolls up job counts for the reports"},
		{Name: JobHistoryHours, Group: groupPeriodic, Kind: KindInt, Default: strconv.Itoa(jobs.DefaultHistoryHours), Min: "1", Max: "168",
			Binaries: RunnerBinary, Doc: "hours each `job-history` run recomputes"},
		{Name: FailedJobsRetentionDays, Group: groupPeriodic, Kind: KindInt, Default: strconv.Itoa(jobs.DefaultArchiveRetentionDays), Min: "1",
			Max: strconv.Itoa(jobs.MaxRetentionDays), Binaries: RunnerBinary, Doc: "how long archived failed jobs are kept, in days"},

		{Name: MaxContentBytes, Group: groupMessages, Kind: KindInt, Default: "65536", Min: "1", Max: "16777216", Binaries: services,
			Doc: "largest message content, in bytes"},
		{Name: SearchLanguage, Group: groupMessages, Kind: KindString, Default: "simple", Format: "a text search configuration of the database",
			Binaries: services, Doc: "text search configuration of the index (runner) and of queries (gateway); set both alike"},

		{Name: GatewayAddr, Group: groupGateway, Kind: KindAddr, Default: ":8081", Binaries: GatewayBinary,
			Doc: "gateway HTTP and websocket listener"},
		{Name: GatewayAllowedOrigins, Group: groupGateway, Kind: KindList, Format: "host patterns", Binaries: GatewayBinary,
			Doc: "extra websocket origins; same-origin always works"},
		{Name: GatewayDBTimeout, Group: groupGateway, Kind: KindDuration, Default: "5s", Min: "100ms", Max: "1m", Binaries: GatewayBinary,
			Doc: "bound on each request's database work"},
		{Name: GroupMaxMembers, Group: groupGateway, Kind: KindInt, Default: "1000", Min: "2", Max: "100000",
			Binaries: GatewayBinary, Doc: "most members a group conversation may have"},
		{Name: GatewayShutdownTimeout, Group: groupGateway, Kind: KindDuration, Default: "10s", Min: "1s", Max: "10m", Binaries: GatewayBinary,
			Doc: "drain time on SIGTERM"},
		{Name: WSSendBuffer, Group: groupGateway, Kind: KindInt, Default: "256", Min: "1", Max: "65536", Binaries: GatewayBinary,
			Doc: "frames queued for one socket before it is closed as too slow"},
		{Name: MetricsToken, Group: groupGateway, Kind: KindSecret, MinLen: 16, Binaries: GatewayBinary,
			Doc: "bearer token required on the gateway's `/metrics`"},
		{Name: GatewayMetricsAddr, Group: groupGateway, Kind: KindAddr, Binaries: GatewayBinary,
			Doc: "serve the gateway's `/metrics` on this separate listener instead; with neither this nor `METRICS_TOKEN` the gateway serves no metrics"},
		// The per-user rate limit is far above what a person types and low
		// enough that one token cannot flood the store (bulk sends go
		// through broadcasts, one request).
		{Name: RateLimitPerSecond, Group: groupGateway, Kind: KindInt, Default: "20", Min: "0", Max: "100000", Binaries: GatewayBinary,
			Doc: "requests (and send, ack and resume frames) per second per user, shared by every gateway through Redis; `0` disables the limit"},
		{Name: RateLimitBurst, Group: groupGateway, Kind: KindInt, DefaultNote: "2 × `RATE_LIMIT_PER_SECOND`", Min: "0", Max: "1000000",
			Binaries: GatewayBinary, Doc: "how many requests may come at once after a pause"},
		{Name: AttachmentMaxBytes, Group: groupGateway, Kind: KindInt, Default: "10485760", Min: "1", Max: "1073741824", Binaries: GatewayBinary,
			Doc: "largest upload, in bytes"},
		{Name: AttachmentTTL, Group: groupGateway, Kind: KindDuration, Default: "720h", Min: "1m", Max: "87600h", Binaries: GatewayBinary,
			Doc: "how long an upload is kept"},

		{Name: AuthSecret, Group: groupAuth, Kind: KindSecret, Format: "at least 32 bytes",
			DefaultNote: "required by the gateway and `admin token`; `make run` makes one", Binaries: GatewayBinary | AdminBinary,
			Doc: "HS256 signing secret of bearer tokens"},
		{Name: AuthIssuer, Group: groupAuth, Kind: KindString, Binaries: GatewayBinary | AdminBinary,
			Doc: "when set, tokens must carry this issuer (`iss`), and `admin token` puts it in"},
		{Name: AuthAudience, Group: groupAuth, Kind: KindString, Binaries: GatewayBinary | AdminBinary,
			Doc: "when set, tokens must name this audience (`aud`), and `admin token` puts it in"},

		{Name: EncryptionKeys, Group: groupEncryption, Kind: KindSecret, Format: "`id:<base64 of 32 bytes>,…`",
			DefaultNote: "`make run`: a development key", Binaries: services,
			Doc: "key-encryption keys; unset, a `requires_encryption` send answers 501"},
		{Name: EncryptionActiveKey, Group: groupEncryption, Kind: KindString, Format: "a key id of `ENCRYPTION_KEYS`",
			Binaries: services | AdminBinary,
			Doc:      "the key that wraps new data keys (required with `ENCRYPTION_KEYS`); `admin rotate --all` moves conversations under it"},
		{Name: ExportDir, Group: groupEncryption, Kind: KindPath, DefaultNote: "`make run`: `.dev/exports`", Binaries: RunnerBinary,
			Doc: "directory of decrypted compliance exports (created 0700, files 0600); unset, exports are cancelled"},
		{Name: AttachmentsDir, Group: groupEncryption, Kind: KindPath, DefaultNote: "`make run`: `.dev/attachments`", Binaries: services,
			Doc: "local directory of uploaded files, shared by gateways and runners; unset disables uploads and `expired_attachments`"},

		{Name: SMTPHost, Group: groupNotify, Kind: KindString, DefaultNote: "email off", Binaries: RunnerBinary,
			Doc: "SMTP submission server; set it to send email"},
		{Name: SMTPPort, Group: groupNotify, Kind: KindInt, Default: "587", Min: "1", Max: "65535", Binaries: RunnerBinary,
			Doc: "SMTP port"},
		{Name: SMTPUsername, Group: groupNotify, Kind: KindString, Binaries: RunnerBinary,
			Doc: "AUTH PLAIN user, used only over TLS or to a loopback host; no AUTH when unset"},
		{Name: SMTPPassword, Group: groupNotify, Kind: KindSecret, Binaries: RunnerBinary,
			Doc: "AUTH PLAIN password"},
		{Name: SMTPFrom, Group: groupNotify, Kind: KindString, Format: "`name <address>`, or address", DefaultNote: "required with `SMTP_HOST`",
			Binaries: RunnerBinary, Doc: "sender; its domain ends the Message-IDs"},
		{Name: SMTPHelo, Group: groupNotify, Kind: KindString, Default: "localhost", Binaries: RunnerBinary,
			Doc: "name given in EHLO"},
		{Name: SMTPRequireTLS, Group: groupNotify, Kind: KindBool, Default: "false", Binaries: RunnerBinary,
			Doc: "refuse to send when the server does not offer STARTTLS (which is always used when offered)"},
		{Name: SMTPCAFile, Group: groupNotify, Kind: KindPath, DefaultNote: "the system's roots", Binaries: RunnerBinary,
			Doc: "PEM file of the roots trusted for STARTTLS"},
		{Name: PushProjectID, Group: groupNotify, Kind: KindString, DefaultNote: "push off", Binaries: RunnerBinary,
			Doc: "FCM project; set it to send push notifications"},
		{Name: PushBaseURL, Group: groupNotify, Kind: KindURL, Default: "https://fcm.googleapis.com", Binaries: RunnerBinary,
			Doc: "root of an FCM HTTP v1-compatible API"},
		{Name: PushServiceAccountFile, Group: groupNotify, Kind: KindPath, DefaultNote: "this or `PUSH_CREDENTIAL` with `PUSH_PROJECT_ID`",
			Binaries: RunnerBinary, Doc: "Google service account key (JSON) from which the runner mints and renews OAuth 2 access tokens, as real FCM needs"},
		{Name: PushCredential, Group: groupNotify, Kind: KindSecret, DefaultNote: "this or `PUSH_SERVICE_ACCOUNT_FILE` with `PUSH_PROJECT_ID`",
			Binaries: RunnerBinary, Doc: "fixed credential sent as `Authorization: Bearer`, for FCM-compatible gateways that take one"},
		{Name: SMSAccountSID, Group: groupNotify, Kind: KindString, DefaultNote: "SMS off", Binaries: RunnerBinary,
			Doc: "Twilio-compatible account; set it to send SMS"},
		{Name: SMSBaseURL, Group: groupNotify, Kind: KindURL, Default: "https://api.twilio.com", Binaries: RunnerBinary,
			Doc: "root of a Twilio-compatible API"},
		{Name: SMSAuthToken, Group: groupNotify, Kind: KindSecret, DefaultNote: "required with `SMS_ACCOUNT_SID`", Binaries: RunnerBinary,
			Doc: "basic-auth token of the account"},
		{Name: SMSFrom, Group: groupNotify, Kind: KindString, Format: "E.164 number", DefaultNote: "required with `SMS_ACCOUNT_SID`",
			Binaries: RunnerBinary, Doc: "sending number"},
		{Name: NotifyProviderTimeout, Group: groupNotify, Kind: KindDuration, Default: "10s", Min: "100ms", Max: "5m", Binaries: RunnerBinary,
			Doc: "bound on one call to a provider"},
		{Name: NotifyTemplatesDir, Group: groupNotify, Kind: KindPath, DefaultNote: "built-in templates only", Binaries: RunnerBinary,
			Doc: "directory of `{type}.{channel}.{part}.tmpl` files that replace or add templates, checked at start"},

		{Name: AdminAddr, Group: groupAdmin, Kind: KindAddr, Default: ":8080", Binaries: AdminServeBinary,
			Doc: "admin server listener"},
		{Name: AdminToken, Group: groupAdmin, Kind: KindSecret, MinLen: 16, Binaries: AdminServeBinary,
			Doc: "operator token; this or `ADMIN_VIEWER_TOKEN` is required unless `ADMIN_INSECURE_DEV` is true"},
		{Name: AdminViewerToken, Group: groupAdmin, Kind: KindSecret, MinLen: 16, Binaries: AdminServeBinary,
			Doc: "viewer token: reads, never changes"},
		{Name: AdminInsecureDev, Group: groupAdmin, Kind: KindBool, Default: "false", DefaultNote: "`make run`: true when no token is set",
			Binaries: AdminServeBinary, Doc: "serve everyone as an operator; for development only"},
		{Name: AdminHealthWindow, Group: groupAdmin, Kind: KindDuration, Default: "1h", Min: "1m", Max: "720h", Binaries: AdminServeBinary,
			Doc: "window of a queue's failure rate in `/queue/health`"},
		{Name: AdminHealthDegradedFailurePercent, Group: groupAdmin, Kind: KindInt, Default: "5", Min: "1", Max: "100", Binaries: AdminServeBinary,
			Doc: "failure rate, in percent, at which a queue is degraded"},
		{Name: AdminHealthUnhealthyFailurePercent, Group: groupAdmin, Kind: KindInt, Default: "20", Min: "1", Max: "100", Binaries: AdminServeBinary,
			Doc: "failure rate, in percent, at which a queue is unhealthy"},
		{Name: AdminHealthDegradedWait, Group: groupAdmin, Kind: KindDuration, Default: "1m", Min: "1s", Max: "24h", Binaries: AdminServeBinary,
			Doc: "age of a queue's oldest waiting job at which it is degraded"},
		{Name: AdminHealthUnhealthyWait, Group: groupAdmin, Kind: KindDuration, Default: "5m", Min: "1s", Max: "24h", Binaries: AdminServeBinary,
			Doc: "age of a queue's oldest waiting job at which it is unhealthy"},
		{Name: User, Group: groupAdmin, Kind: KindString, Default: "unknown", Binaries: AdminBinary,
			Doc: "who the admin commands' audit lines name"},

		{Name: FakeProviders, Group: groupDevelopment, Kind: KindEnum, Values: []string{"1"}, Binaries: MakeRun,
			Doc: "start `cmd/fakeproviders`, local stand-ins for SMTP, push and SMS, and point the runner at them"},
		{Name: TestDatabaseURL, Group: groupDevelopment, Kind: KindDatabaseURL, DefaultNote: "`DATABASE_URL`", Binaries: Tests,
			Doc: "PostgreSQL server on which the tests create their databases"},
		{Name: TestRedisURL, Group: groupDevelopment, Kind: KindURL, Default: "redis://127.0.0.1:6379/0", DefaultNote: "`REDIS_URL` when set",
			Binaries: Tests,
			Doc:      "Redis the tests use, each under a key prefix of its own"},
	}
}
