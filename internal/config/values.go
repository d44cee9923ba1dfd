package config

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/msgrunner/msgrunner/jobs"
)

// Database says how a binary reaches PostgreSQL.
type Database struct {
	// URL is DATABASE_URL.
	URL string
	// MaxConns is DATABASE_MAX_CONNS, the pool size.
	MaxConns int
	// ReadURL is DATABASE_READ_URL (the gateway's and admin serve's): a
	// standby for reads that tolerate lag; empty when every read goes to
	// URL.
	ReadURL string
	// ReadMaxLag is DATABASE_READ_MAX_LAG.
	ReadMaxLag time.Duration
}

// Redis says how to reach Redis: a Redis Cluster when ClusterAddrs is set,
// else URL when it is set, else the address and credentials.
type Redis struct {
	// ClusterAddrs is REDIS_CLUSTER_ADDRS, the host:port seed nodes of a
	// Redis Cluster; when it is set, only Username and Password are read
	// besides it, and URL, Host, Port and DB are zero.
	ClusterAddrs []string
	// URL is REDIS_URL; when it is set, Host, Port, Username, Password
	// and DB are not read (they are zero).
	URL string
	// Host, Port, Username, Password and DB are REDIS_HOST, REDIS_PORT,
	// REDIS_USERNAME, REDIS_PASSWORD and REDIS_QUEUE_DB.
	Host               string
	Port               int
	Username, Password string
	DB                 int
	// Prefix is REDIS_PREFIX, the prefix of every key and channel.
	Prefix string
}

// Log configures the process's log handler.
type Log struct {
	// Level is LOG_LEVEL.
	Level slog.Level
	// Format is LOG_FORMAT: json or text.
	Format string
}

// Tracing configures span export; an empty Endpoint means tracing is off.
type Tracing struct {
	// Endpoint is OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	// ServiceName is OTEL_SERVICE_NAME, by default msgrunner-<binary>.
	ServiceName string
	// SampleRatio is OTEL_TRACES_SAMPLE_PERCENT as a fraction in (0, 1].
	SampleRatio float64
}

// Encryption holds the key-encryption keys; empty Keys means encryption
// is off.
type Encryption struct {
	// Keys is ENCRYPTION_KEYS, "id:<base64 of 32 bytes>,...", a secret.
	Keys string
	// ActiveKey is ENCRYPTION_ACTIVE_KEY; read only when Keys is set.
	ActiveKey string
}

// Service is what the runner and the gateway both read, so they always
// agree on names, defaults and bounds.
type Service struct {
	// Database, Redis, Log and Tracing are DATABASE_*, REDIS_*, LOG_* and
	// OTEL_*.
	Database Database
	Redis    Redis
	Log      Log
	Tracing  Tracing
	// PprofAddr is PPROF_ADDR, a loopback address, or "" for no
	// profiler.
	PprofAddr string
	// MaxContentBytes is MAX_CONTENT_BYTES.
	MaxContentBytes int
	// SearchLanguage is SEARCH_LANGUAGE.
	SearchLanguage string
	// Encryption is ENCRYPTION_KEYS and ENCRYPTION_ACTIVE_KEY.
	Encryption Encryption
	// AttachmentsDir is ATTACHMENTS_DIR, or "" for no attachment store.
	AttachmentsDir string
}

// Runner is cmd/runner's configuration.
type Runner struct {
	Service
	// RiverLogLevel is RIVER_LOG_LEVEL.
	RiverLogLevel slog.Level
	// AsyncCommit is RUNNER_ASYNC_COMMIT.
	AsyncCommit bool
	// ID, Addr, ShutdownTimeout and LeaseTTL are RUNNER_ID, RUNNER_ADDR,
	// RUNNER_SHUTDOWN_TIMEOUT and RUNNER_LEASE_TTL.
	ID, Addr        string
	ShutdownTimeout time.Duration
	LeaseTTL        time.Duration
	// FetchCooldown, FetchPollInterval, RescueStuckJobsAfter and the
	// retentions are the RIVER_* settings.
	FetchCooldown        time.Duration
	FetchPollInterval    time.Duration
	RescueStuckJobsAfter time.Duration
	CompletedRetention   time.Duration
	CancelledRetention   time.Duration
	DiscardedRetention   time.Duration
	// Queues are jobs.DefaultQueues with their QUEUE_<NAME>_* settings
	// applied.
	Queues []jobs.QueueSpec
	// DeliveryBackstop, DeliverySweep and IndexSweep are
	// DELIVERY_BACKSTOP_DELAY, DELIVERY_SWEEP_INTERVAL and
	// INDEX_SWEEP_INTERVAL.
	DeliveryBackstop time.Duration
	DeliverySweep    time.Duration
	IndexSweep       time.Duration
	// ExportDir is EXPORT_DIR, or "" to cancel exports.
	ExportDir string
	// Notify is the notification providers' settings.
	Notify Notify
	// CleanupSchedule is CLEANUP_SCHEDULE, nil when it is off; Cleanup is
	// one job's arguments per CLEANUP_TYPES entry (empty when off).
	CleanupSchedule cron.Schedule
	Cleanup         []jobs.CleanupMessagesArgs
	// HistoryEvery is JOB_HISTORY_INTERVAL; History holds
	// JOB_HISTORY_HOURS and FAILED_JOBS_RETENTION_DAYS.
	HistoryEvery time.Duration
	History      jobs.JobHistoryArgs
}

// Notify configures the notification providers; a provider whose first
// field (SMTP.Host, Push.ProjectID, SMS.AccountSID) is empty is off, and
// then its other fields are not read.
type Notify struct {
	// ProviderTimeout is NOTIFY_PROVIDER_TIMEOUT.
	ProviderTimeout time.Duration
	// TemplatesDir is NOTIFY_TEMPLATES_DIR, or "" for the built-in
	// templates only.
	TemplatesDir string
	// SMTP, Push and SMS are the providers' SMTP_*, PUSH_* and SMS_*.
	SMTP SMTP
	Push Push
	SMS  SMS
}

// SMTP is the SMTP_* settings.
type SMTP struct {
	// Host and Port are SMTP_HOST and SMTP_PORT.
	Host string
	Port int
	// Username, Password and From are SMTP_USERNAME, SMTP_PASSWORD and
	// SMTP_FROM.
	Username, Password, From string
	// Helo is SMTP_HELO; RequireTLS is SMTP_REQUIRE_TLS.
	Helo       string
	RequireTLS bool
	// CAFile is a PEM file of trusted roots, or "" for the system's.
	CAFile string
}

// Push is the PUSH_* settings.
type Push struct {
	// ProjectID and BaseURL are PUSH_PROJECT_ID and PUSH_BASE_URL.
	ProjectID, BaseURL string
	// ServiceAccountFile and Credential are the two ways to authenticate;
	// one is required.
	ServiceAccountFile, Credential string
}

// SMS is the SMS_* settings.
type SMS struct {
	// AccountSID, BaseURL, AuthToken and From are SMS_ACCOUNT_SID,
	// SMS_BASE_URL, SMS_AUTH_TOKEN and SMS_FROM.
	AccountSID, BaseURL, AuthToken, From string
}

// Gateway is cmd/gateway's configuration.
type Gateway struct {
	Service
	// Addr is GATEWAY_ADDR.
	Addr string
	// Auth is AUTH_SECRET (required), AUTH_ISSUER and AUTH_AUDIENCE.
	Auth Auth
	// AllowedOrigins is GATEWAY_ALLOWED_ORIGINS.
	AllowedOrigins []string
	// DBTimeout, ShutdownTimeout and SendBuffer are GATEWAY_DB_TIMEOUT,
	// GATEWAY_SHUTDOWN_TIMEOUT and WS_SEND_BUFFER.
	DBTimeout       time.Duration
	ShutdownTimeout time.Duration
	SendBuffer      int
	// GroupMaxMembers is GROUP_MAX_MEMBERS.
	GroupMaxMembers int
	// MetricsToken is METRICS_TOKEN; MetricsAddr is GATEWAY_METRICS_ADDR.
	MetricsToken string
	MetricsAddr  string
	// RateLimitPerSecond is RATE_LIMIT_PER_SECOND (0 disables the limit);
	// RateLimitBurst is RATE_LIMIT_BURST, twice the rate by default.
	RateLimitPerSecond int
	RateLimitBurst     int
	// AttachmentMaxBytes and AttachmentTTL are ATTACHMENT_MAX_BYTES and
	// ATTACHMENT_TTL.
	AttachmentMaxBytes int64
	AttachmentTTL      time.Duration
}

// Auth is the bearer-token settings shared by the gateway and `admin
// token`.
type Auth struct {
	// Secret is AUTH_SECRET, the HS256 signing secret.
	Secret string
	// Issuer and Audience are AUTH_ISSUER and AUTH_AUDIENCE; empty means
	// not required.
	Issuer, Audience string
}

// AdminServe is `admin serve`'s configuration.
type AdminServe struct {
	// Database, Log and Tracing are as in Service, with admin serve's
	// defaults.
	Database Database
	Log      Log
	Tracing  Tracing
	// Addr is ADMIN_ADDR.
	Addr string
	// OperatorToken and ViewerToken are ADMIN_TOKEN and
	// ADMIN_VIEWER_TOKEN; InsecureDev is ADMIN_INSECURE_DEV.
	OperatorToken, ViewerToken string
	InsecureDev                bool
	// Health is the ADMIN_HEALTH_* thresholds.
	Health Health
}

// Health is the ADMIN_HEALTH_* thresholds of /queue/health.
type Health struct {
	// Window is ADMIN_HEALTH_WINDOW; the others are
	// ADMIN_HEALTH_{DEGRADED,UNHEALTHY}_{FAILURE_PERCENT,WAIT}.
	Window                  time.Duration
	DegradedFailurePercent  int
	UnhealthyFailurePercent int
	DegradedWait            time.Duration
	UnhealthyWait           time.Duration
	// DeliverySweep, IndexSweep and HistoryEvery are the runner's sweep
	// intervals (DELIVERY_SWEEP_INTERVAL, INDEX_SWEEP_INTERVAL,
	// JOB_HISTORY_INTERVAL), against which a sweep that stopped completing
	// is judged.
	DeliverySweep time.Duration
	IndexSweep    time.Duration
	HistoryEvery  time.Duration
}

// TestServices is where the tests find PostgreSQL and Redis.
type TestServices struct {
	// DatabaseURL is TEST_DATABASE_URL, else DATABASE_URL.
	DatabaseURL string
	// RedisURL is TEST_REDIS_URL when set, else REDIS_URL when set, else
	// TEST_REDIS_URL's default.
	RedisURL string
}

// DatabaseURL reads DATABASE_URL.
func (r *Reader) DatabaseURL() string { return r.str(DatabaseURL) }

// Auth reads AUTH_SECRET, AUTH_ISSUER and AUTH_AUDIENCE.
func (r *Reader) Auth() Auth {
	return Auth{Secret: r.secret(AuthSecret), Issuer: r.str(AuthIssuer), Audience: r.str(AuthAudience)}
}

// ActiveKey reads ENCRYPTION_ACTIVE_KEY.
func (r *Reader) ActiveKey() string { return r.str(EncryptionActiveKey) }

// Operator reads USER, the name the admin commands' audit lines record.
func (r *Reader) Operator() string { return r.str(User) }

// TestServices reads where the tests find PostgreSQL and Redis.
func (r *Reader) TestServices() TestServices {
	t := TestServices{DatabaseURL: r.str(TestDatabaseURL), RedisURL: r.str(TestRedisURL)}
	if t.DatabaseURL == "" {
		t.DatabaseURL = r.DatabaseURL()
	}
	if !r.isSet(TestRedisURL) && r.isSet(RedisURL) {
		t.RedisURL = r.str(RedisURL)
	}
	return t
}

func (r *Reader) database(b Binary) Database {
	d := Database{URL: r.DatabaseURL(), MaxConns: r.intOf(r.setting(DatabaseMaxConns, KindInt).For(b))}
	if b == GatewayBinary || b == AdminServeBinary {
		d.ReadURL, d.ReadMaxLag = r.str(DatabaseReadURL), r.duration(DatabaseReadMaxLag)
	}
	return d
}

func (r *Reader) redis() Redis {
	c := Redis{Prefix: r.str(RedisPrefix)}
	if addrs := r.clusterAddrs(); len(addrs) > 0 {
		for _, v := range []Var{RedisURL, RedisHost} {
			if r.isSet(v) {
				r.Fail(RedisClusterAddrs, "cannot be set together with %s: unset one of them", v)
			}
		}
		c.ClusterAddrs = addrs
		c.Username, c.Password = r.str(RedisUsername), r.secret(RedisPassword)
		return c
	}
	if r.isSet(RedisURL) {
		c.URL = r.str(RedisURL)
		return c
	}
	c.Host, c.Port = r.str(RedisHost), r.integer(RedisPort)
	c.Username, c.Password = r.str(RedisUsername), r.secret(RedisPassword)
	c.DB = r.integer(RedisQueueDB)
	return c
}

// clusterAddrs reads REDIS_CLUSTER_ADDRS: nil when it is unset or when an
// address in it is not host:port (then the problem is recorded).
func (r *Reader) clusterAddrs() []string {
	addrs := splitList(r.str(RedisClusterAddrs))
	if len(addrs) == 0 && r.isSet(RedisClusterAddrs) {
		r.Fail(RedisClusterAddrs, "lists no address (example: 10.0.0.1:6379,10.0.0.2:6379)")
	}
	for _, a := range addrs {
		if err := checkHostPort(a); err != nil {
			r.Fail(RedisClusterAddrs, "%v", err)
			return nil
		}
	}
	return addrs
}

func (r *Reader) log() Log { return Log{Level: r.logLevel(LogLevel), Format: r.str(LogFormat)} }

func (r *Reader) tracing(b Binary) Tracing {
	endpoint := r.str(OTELExporterOTLPEndpoint)
	if endpoint == "" {
		return Tracing{}
	}
	return Tracing{
		Endpoint:    endpoint,
		ServiceName: r.strOf(r.setting(OTELServiceName, KindString).For(b)),
		SampleRatio: float64(r.integer(OTELTracesSamplePercent)) / 100,
	}
}

func (r *Reader) service(b Binary) Service {
	s := Service{
		Database:        r.database(b),
		Redis:           r.redis(),
		Log:             r.log(),
		Tracing:         r.tracing(b),
		PprofAddr:       r.str(PprofAddr),
		MaxContentBytes: r.integer(MaxContentBytes),
		SearchLanguage:  r.str(SearchLanguage),
		AttachmentsDir:  r.str(AttachmentsDir),
	}
	if keys := r.secret(EncryptionKeys); keys != "" {
		s.Encryption = Encryption{Keys: keys, ActiveKey: r.ActiveKey()}
	}
	return s
}

// Runner reads cmd/runner's configuration.
func (r *Reader) Runner() Runner {
	c := Runner{
		Service:              r.service(RunnerBinary),
		AsyncCommit:          r.boolean(RunnerAsyncCommit),
		RiverLogLevel:        r.logLevel(RiverLogLevel),
		ID:                   r.str(RunnerID),
		Addr:                 r.str(RunnerAddr),
		ShutdownTimeout:      r.duration(RunnerShutdownTimeout),
		LeaseTTL:             r.duration(RunnerLeaseTTL),
		FetchCooldown:        r.duration(RiverFetchCooldown),
		FetchPollInterval:    r.duration(RiverFetchPollInterval),
		RescueStuckJobsAfter: r.duration(RiverRescueStuckJobsAfter),
		CompletedRetention:   r.duration(RiverCompletedRetention),
		CancelledRetention:   r.duration(RiverCancelledRetention),
		DiscardedRetention:   r.duration(RiverDiscardedRetention),
		Queues:               r.queues(),
		DeliveryBackstop:     r.duration(DeliveryBackstopDelay),
		DeliverySweep:        r.duration(DeliverySweepInterval),
		IndexSweep:           r.duration(IndexSweepInterval),
		ExportDir:            r.str(ExportDir),
		Notify:               r.notify(),
		HistoryEvery:         r.duration(JobHistoryInterval),
		History: jobs.JobHistoryArgs{
			Hours:                r.integer(JobHistoryHours),
			ArchiveRetentionDays: r.integer(FailedJobsRetentionDays),
		},
	}
	if sched, on := r.schedule(CleanupSchedule); on {
		c.CleanupSchedule = sched
		c.Cleanup = r.cleanup(c.AttachmentsDir != "")
	}
	return c
}

// queues returns jobs.DefaultQueues with QUEUE_<NAME>_WORKERS,
// _RETRY_BASE, _TIMEOUT and _FETCH_COOLDOWN applied.
func (r *Reader) queues() []jobs.QueueSpec {
	queues := jobs.DefaultQueues()
	workers, retry := r.setting(QueueWorkers, KindInt), r.setting(QueueRetryBase, KindDuration)
	timeout, cooldown := r.setting(QueueTimeout, KindDuration), r.setting(QueueFetchCooldown, KindDuration)
	for i := range queues {
		q := &queues[i]
		q.Workers = r.intOf(workers.Instance(q.Name, strconv.Itoa(q.Workers)))
		q.RetryBase = r.durationOf(retry.Instance(q.Name, formatDuration(q.RetryBase)))
		q.Timeout = r.durationOf(timeout.Instance(q.Name, formatDuration(q.Timeout)))
		q.FetchCooldown = r.durationOf(cooldown.Instance(q.Name, formatDuration(q.FetchCooldown)))
	}
	return queues
}

// cleanup returns one job's arguments per CLEANUP_TYPES entry; the default
// adds expired_attachments when there is an attachment store.
func (r *Reader) cleanup(attachments bool) []jobs.CleanupMessagesArgs {
	retention, batchSize := r.integer(CleanupRetentionDays), r.integer(CleanupBatchSize)
	types := r.str(CleanupTypes)
	if attachments && !r.isSet(CleanupTypes) {
		types += "," + jobs.CleanupExpiredAttachments
	}
	var out []jobs.CleanupMessagesArgs
	for _, t := range strings.Split(types, ",") {
		a := jobs.CleanupMessagesArgs{Type: strings.TrimSpace(t), BatchSize: batchSize}
		if a.Type == jobs.CleanupOldMessages {
			a.RetentionDays = retention
		}
		if err := a.Validate(); err != nil {
			r.Fail(CleanupTypes, "%v", err)
			continue
		}
		out = append(out, a)
	}
	return out
}

func (r *Reader) notify() Notify {
	n := Notify{ProviderTimeout: r.duration(NotifyProviderTimeout), TemplatesDir: r.str(NotifyTemplatesDir)}
	if host := r.str(SMTPHost); host != "" {
		n.SMTP = SMTP{
			Host: host, Port: r.integer(SMTPPort), Username: r.str(SMTPUsername), Password: r.secret(SMTPPassword),
			From: r.str(SMTPFrom), Helo: r.str(SMTPHelo), RequireTLS: r.boolean(SMTPRequireTLS), CAFile: r.str(SMTPCAFile),
		}
	}
	if project := r.str(PushProjectID); project != "" {
		n.Push = Push{
			ProjectID: project, BaseURL: r.str(PushBaseURL),
			ServiceAccountFile: r.str(PushServiceAccountFile), Credential: r.secret(PushCredential),
		}
	}
	if sid := r.str(SMSAccountSID); sid != "" {
		n.SMS = SMS{AccountSID: sid, BaseURL: r.str(SMSBaseURL), AuthToken: r.secret(SMSAuthToken), From: r.str(SMSFrom)}
	}
	return n
}

// Gateway reads cmd/gateway's configuration. AUTH_SECRET is required.
func (r *Reader) Gateway() Gateway {
	c := Gateway{
		Service:            r.service(GatewayBinary),
		Addr:               r.str(GatewayAddr),
		Auth:               r.Auth(),
		DBTimeout:          r.duration(GatewayDBTimeout),
		ShutdownTimeout:    r.duration(GatewayShutdownTimeout),
		SendBuffer:         r.integer(WSSendBuffer),
		GroupMaxMembers:    r.integer(GroupMaxMembers),
		MetricsToken:       r.secret(MetricsToken),
		MetricsAddr:        r.str(GatewayMetricsAddr),
		RateLimitPerSecond: r.integer(RateLimitPerSecond),
		AttachmentMaxBytes: int64(r.integer(AttachmentMaxBytes)),
		AttachmentTTL:      r.duration(AttachmentTTL),
	}
	if !r.isSet(AuthSecret) {
		r.Fail(AuthSecret, "is required: the HS256 secret that signs bearer tokens (%s)", r.declared[AuthSecret].Format)
	}
	c.AllowedOrigins = splitList(r.str(GatewayAllowedOrigins))
	c.RateLimitBurst = r.intOr(RateLimitBurst, 2*c.RateLimitPerSecond)
	return c
}

// AdminServe reads `admin serve`'s configuration. ADMIN_TOKEN or
// ADMIN_VIEWER_TOKEN is required unless ADMIN_INSECURE_DEV is true.
func (r *Reader) AdminServe() AdminServe {
	c := AdminServe{
		Database:      r.database(AdminServeBinary),
		Log:           r.log(),
		Addr:          r.str(AdminAddr),
		OperatorToken: r.secret(AdminToken),
		ViewerToken:   r.secret(AdminViewerToken),
		InsecureDev:   r.boolean(AdminInsecureDev),
		Health: Health{
			Window:                  r.duration(AdminHealthWindow),
			DegradedFailurePercent:  r.integer(AdminHealthDegradedFailurePercent),
			UnhealthyFailurePercent: r.integer(AdminHealthUnhealthyFailurePercent),
			DegradedWait:            r.duration(AdminHealthDegradedWait),
			UnhealthyWait:           r.duration(AdminHealthUnhealthyWait),
			DeliverySweep:           r.duration(DeliverySweepInterval),
			IndexSweep:              r.duration(IndexSweepInterval),
			HistoryEvery:            r.duration(JobHistoryInterval),
		},
	}
	if !r.isSet(AdminToken) && !r.isSet(AdminViewerToken) && !c.InsecureDev {
		r.Fail(AdminToken, "is required (or %s, or %s=1 for development)", AdminViewerToken, AdminInsecureDev)
	}
	c.Tracing = r.tracing(AdminServeBinary)
	return c
}
