package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ReplicaConfig configures a Replica.
type ReplicaConfig struct {
	// URL is the standby's connection string (DATABASE_READ_URL).
	// Required.
	URL string
	// MaxConns caps the standby pool. Default DefaultMaxConns.
	MaxConns int32
	// MaxLag is how far behind the primary the standby may be and still
	// serve reads (DATABASE_READ_MAX_LAG). Default 5s.
	MaxLag time.Duration
	// CheckEvery is how often the standby's lag is measured. Default 1s.
	CheckEvery time.Duration
	// ApplicationName is reported in the standby's pg_stat_activity.
	ApplicationName string
	// Logger receives a line whenever reads move to the primary or back.
	// Required.
	Logger *slog.Logger
	// Registry, when set, receives the lag and in-use gauges.
	Registry prometheus.Registerer
}

// Replica sends the reads that tolerate lag (search, say) to a streaming
// standby while it answers and has replayed to within MaxLag of the
// primary, and to the primary otherwise: a standby that is down, lagging
// or unreachable is bypassed, never an error for the reader. It measures
// the lag every CheckEvery: how long ago the primary was at the oldest WAL
// position the standby has not replayed yet, to within CheckEvery. Close
// it when done.
type Replica struct {
	primary, standby *pgxpool.Pool
	cfg              ReplicaConfig
	inUse            atomic.Bool
	metrics          *replicaMetrics
	stop             context.CancelFunc
	done             chan struct{}

	mu     sync.Mutex // guards reason
	reason string     // why reads go to the primary; "" while the standby serves them

	seen []lsnSample // the primary's positions not yet replayed, oldest first; the watcher's own
}

// NewReplica opens the standby pool (without waiting for the standby: one
// that is down at start is bypassed until it answers) and starts
// measuring its lag against primary.
func NewReplica(primary *pgxpool.Pool, cfg ReplicaConfig) (*Replica, error) {
	if primary == nil || cfg.URL == "" || cfg.Logger == nil {
		return nil, errors.New("db: NewReplica needs the primary pool, ReplicaConfig.URL and ReplicaConfig.Logger")
	}
	cfg.MaxConns = cmp.Or(cfg.MaxConns, DefaultMaxConns)
	cfg.MaxLag = cmp.Or(cfg.MaxLag, 5*time.Second)
	cfg.CheckEvery = cmp.Or(cfg.CheckEvery, time.Second)
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, errors.New("parsing the read replica URL: invalid connection string")
	}
	pc.MaxConns, pc.MinConns = cfg.MaxConns, 0
	pc.ConnConfig.ConnectTimeout = min(cfg.CheckEvery, 5*time.Second)
	if cfg.ApplicationName != "" {
		pc.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
	}
	pc.AfterConnect = registerTypes
	standby, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("creating the read replica pool: %w", err)
	}
	m, err := newReplicaMetrics(cfg.Registry)
	if err != nil {
		standby.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Replica{primary: primary, standby: standby, cfg: cfg, metrics: m, stop: stop, done: make(chan struct{}), reason: notChecked}
	go r.watch(ctx)
	return r, nil
}

// Reads returns the pool to run a lag-tolerant read on: the standby while
// it is in use, else the primary.
func (r *Replica) Reads() Querier {
	if r.inUse.Load() {
		return r.standby
	}
	return r.primary
}

// Standby returns the standby pool and whether it is in use now, for a
// caller that reads there first and checks what it got.
func (r *Replica) Standby() (Querier, bool) { return r.standby, r.inUse.Load() }

// InUse reports whether reads go to the standby now, and if not, why.
func (r *Replica) InUse() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason == "", r.reason
}

// Close stops measuring and closes the standby pool.
func (r *Replica) Close() {
	r.stop()
	<-r.done
	r.standby.Close()
}

func (r *Replica) watch(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.CheckEvery)
	defer tick.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// check measures the standby's lag and moves reads accordingly.
func (r *Replica) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CheckEvery)
	defer cancel()
	lag, err := r.lag(ctx)
	if ctx.Err() != nil && err != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		return // closing
	}
	reason := ""
	switch {
	case err != nil:
		reason = "the read replica does not answer: " + err.Error()
	case lag > r.cfg.MaxLag:
		reason = fmt.Sprintf("the read replica lags %s behind the primary (more than %s)", lag.Round(time.Millisecond), r.cfg.MaxLag)
	}
	if err == nil {
		r.metrics.lag.Set(lag.Seconds())
	}
	r.mu.Lock()
	was := r.reason
	r.reason = reason
	r.mu.Unlock()
	r.inUse.Store(reason == "")
	if reason == "" {
		r.metrics.inUse.Set(1)
	} else {
		r.metrics.inUse.Set(0)
	}
	switch {
	case reason != "" && (was == "" || was == notChecked):
		r.cfg.Logger.Warn("reads that tolerate lag go to the primary", slog.String("reason", reason))
	case reason == "" && was != "":
		r.cfg.Logger.Info("reads that tolerate lag go to the read replica again", slog.Duration("lag", lag))
	}
}

// lag returns how far the standby is behind the primary: how long ago
// the primary was at the oldest of the WAL positions seen at earlier
// checks (and this one) that the standby has not replayed yet, so to
// within CheckEvery; zero when it has replayed them all.
// pg_last_xact_replay_timestamp would not do: it is NULL until the
// standby replays a commit after it starts.
func (r *Replica) lag(ctx context.Context) (time.Duration, error) {
	var primaryLSN string
	if err := r.primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&primaryLSN); err != nil {
		return 0, fmt.Errorf("reading the primary's WAL position: %w", err)
	}
	at, err := parseLSN(primaryLSN)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	if len(r.seen) < maxLSNSamples {
		r.seen = append(r.seen, lsnSample{lsn: at, at: now})
	}
	var recovering bool
	var replayLSN string
	err = r.standby.QueryRow(ctx, "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn()::text, '0/0')").Scan(&recovering, &replayLSN)
	if err != nil {
		return 0, err
	}
	replayed, err := parseLSN(replayLSN)
	if err != nil {
		return 0, err
	}
	if !recovering { // promoted, or not a standby: nothing to wait for
		r.seen = r.seen[:0]
		return 0, nil
	}
	i := 0
	for i < len(r.seen) && r.seen[i].lsn <= replayed {
		i++
	}
	r.seen = append(r.seen[:0], r.seen[i:]...)
	if len(r.seen) == 0 {
		return 0, nil
	}
	return now.Sub(r.seen[0].at), nil
}

// lsnSample is the primary's WAL position at a check.
type lsnSample struct {
	lsn uint64
	at  time.Time
}

// maxLSNSamples bounds the positions kept while the standby lags (a day of
// checks at one a second).
const maxLSNSamples = 86400

// parseLSN reads a pg_lsn's text form, "X/Y" in hex.
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("db: not a WAL position: %q", s)
	}
	return h<<32 | l, nil
}

// notChecked is the reason reads go to the primary before the first check.
const notChecked = "the read replica has not been checked yet"

type replicaMetrics struct {
	lag, inUse prometheus.Gauge
}

func newReplicaMetrics(reg prometheus.Registerer) (*replicaMetrics, error) {
	m := &replicaMetrics{
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "msgrunner_read_replica_lag_seconds",
			Help: "How far the read replica was behind the primary at the last check (0 when it had replayed the primary's WAL position).",
		}),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "msgrunner_read_replica_in_use",
			Help: "1 while reads that tolerate lag go to the read replica, 0 while they go to the primary (replica down or lagging past DATABASE_READ_MAX_LAG).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lag, m.inUse} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
