//go:build chaos

// Package chaos holds the fault tests (`make test-chaos`): real runner,
// gateway and admin processes against a throwaway PostgreSQL and Redis of
// their own, which the tests kill, stop and restart while messages flow.
package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/dbtest"
)

// binDir holds the runner, gateway and admin binaries built once by
// TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "msgrunner-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	cleanStale()
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/runner", "./cmd/gateway", "./cmd/admin")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// cleanStale stops the servers of earlier runs that died without cleaning
// up, and removes their directories.
func cleanStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "msgrunner-chaos-pg-*"))
	for _, d := range dirs {
		// msgrunner-chaos-pg-<pid>-<random>: leave another live run's.
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(d), "msgrunner-chaos-pg-"), "-", 2)[0])
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			continue
		}
		if bin, err := dbtest.PostgresBin(); err == nil {
			_ = asPostgres(exec.Command(filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(d, "data"), "-m", "immediate", "stop")).Run()
		}
		_ = os.RemoveAll(d)
	}
	bins, _ := filepath.Glob(filepath.Join(os.TempDir(), "msgrunner-chaos-bin-*"))
	for _, d := range bins {
		if d != binDir {
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(d)
			}
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// asPostgres runs cmd as the postgres user when we are root: PostgreSQL
// refuses to run as root.
func asPostgres(cmd *exec.Cmd) *exec.Cmd {
	if os.Geteuid() != 0 {
		return cmd
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return cmd
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd
}

// postgres is a throwaway PostgreSQL server with its own data directory
// and port.
type postgres struct {
	t    *testing.T
	bin  string
	dir  string
	port int
}

func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bin, err := dbtest.PostgresBin()
	if err != nil {
		t.Fatal(err)
	}
	dir := newDataDir(t)
	pg := &postgres{t: t, bin: bin, dir: dir, port: freePort(t)}
	initdb := asPostgres(exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"))
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	pg.start()
	t.Cleanup(func() {
		_ = pg.ctl("-m", "immediate", "stop")
		_ = os.RemoveAll(dir)
	})
	return pg
}

func (pg *postgres) ctl(args ...string) error {
	full := append([]string{"-D", filepath.Join(pg.dir, "data"), "-w", "-t", "60"}, args...)
	out, err := asPostgres(exec.Command(filepath.Join(pg.bin, "pg_ctl"), full...)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (pg *postgres) start() {
	pg.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB", pg.port, pg.dir)
	if err := pg.ctl("-l", filepath.Join(pg.dir, "log"), "-o", opts, "start"); err != nil {
		pg.t.Fatal(err)
	}
}

// stop stops the server: mode "fast" closes connections cleanly,
// "immediate" is a crash (recovery runs at the next start).
func (pg *postgres) stop(mode string) {
	pg.t.Helper()
	if err := pg.ctl("-m", mode, "stop"); err != nil {
		pg.t.Fatal(err)
	}
}

func (pg *postgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/msgrunner?sslmode=disable", pg.port)
}

// databaseURL is the processes' DATABASE_URL: the server's, or, with a
// standby, both servers with target_session_attrs=read-write, so clients
// connect to whichever is the primary.
func (c *cluster) databaseURL() string {
	if c.standby == nil {
		return c.pg.url()
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/msgrunner?sslmode=disable&target_session_attrs=read-write",
		c.pg.port, c.standby.port)
}

// newDataDir returns a new server directory owned by the postgres user
// when we are root.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", fmt.Sprintf("msgrunner-chaos-pg-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "-R", "postgres:", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", dir, err, out)
		}
	}
	return dir
}

// addStandby starts a streaming replica of c.pg (pg_basebackup) on a port
// of its own and makes it synchronous (synchronous_standby_names on the
// primary), so a commit is acknowledged only once it is on both servers.
// The processes started after it get both servers in DATABASE_URL, and
// the test's own pool follows the primary too.
func (c *cluster) addStandby() {
	t := c.t
	t.Helper()
	sb := &postgres{t: t, bin: c.pg.bin, dir: newDataDir(t), port: freePort(t)}
	t.Cleanup(func() {
		_ = sb.ctl("-m", "immediate", "stop")
		_ = os.RemoveAll(sb.dir)
	})
	backup := asPostgres(exec.Command(filepath.Join(sb.bin, "pg_basebackup"), "-D", filepath.Join(sb.dir, "data"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.pg.port), "-U", "postgres", "-X", "stream", "-R", "-c", "fast", "--no-sync"))
	if out, err := backup.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v: %s", err, out)
	}
	// Name the standby, so the primary can wait for it by name.
	conninfo := fmt.Sprintf("\nprimary_conninfo = 'host=127.0.0.1 port=%d user=postgres application_name=standby'\n", c.pg.port)
	f, err := os.OpenFile(filepath.Join(sb.dir, "data", "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conninfo)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	sb.start()
	c.standby = sb
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.pool.Exec(ctx, `ALTER SYSTEM SET synchronous_standby_names = 'standby'`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.pool.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the standby streaming synchronously", time.Minute, func() bool {
		var n int
		err := c.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby' AND sync_state = 'sync'`).Scan(&n)
		return err == nil && n == 1
	})
	pool, err := pgxpool.New(context.Background(), c.databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c.pool = pool
}

// kill SIGKILLs the server's postmaster, as a machine dying would, and
// waits until its port refuses connections (its backends notice the
// postmaster's death and exit).
func (pg *postgres) kill() {
	pg.t.Helper()
	raw, err := os.ReadFile(filepath.Join(pg.dir, "data", "postmaster.pid"))
	if err != nil {
		pg.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(raw), "\n", 2)[0])
	if err != nil {
		pg.t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		pg.t.Fatal(err)
	}
	waitFor(pg.t, "the killed server's port closed", 30*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", pg.port), 200*time.Millisecond)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
}

// redisServer is a throwaway Redis on its own port, without persistence.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: install the redis-server package (make services does, as root)")
	}
	r := &redisServer{t: t, port: freePort(t)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--logfile", "")
	r.cmd.Stdout, r.cmd.Stderr = nil, nil
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	waitTCP(r.t, fmt.Sprintf("127.0.0.1:%d", r.port), 10*time.Second)
}

func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func waitTCP(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer after %s: %v", addr, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is one of our processes (runner, gateway, admin).
type proc struct {
	t    *testing.T
	name string
	addr string // its HTTP address
	// readyPath answers 200 once the process serves (GET).
	readyPath string
	cmd       *exec.Cmd
	done      chan struct{}
	log       string
}

// startProc starts binary with env (added to a minimal environment) and
// waits until GET /readyz at addr answers 200.
func startProc(t *testing.T, name, binary, addr, readyPath string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, binary), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_LEVEL=warn"}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, addr: addr, readyPath: readyPath, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	p.waitReady(60 * time.Second)
	return p
}

func (p *proc) waitReady(within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s exited before it was ready:\n%s", p.name, out)
		default:
		}
		resp, err := http.Get("http://" + p.addr + p.readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s is not ready after %s:\n%s", p.name, within, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether GET /readyz answers 200 now.
func (p *proc) ready() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + p.addr + p.readyPath)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits up to within for the process to end.
func (p *proc) term(within time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(within):
		p.t.Fatalf("%s did not stop within %s of SIGTERM", p.name, within)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		out, _ := os.ReadFile(p.log)
		p.t.Fatalf("%s exited with %d after SIGTERM:\n%s", p.name, code, out)
	}
}

// cluster is one test's world: Postgres, Redis and the processes on them.
type cluster struct {
	t       *testing.T
	pg      *postgres
	standby *postgres                    // a synchronous streaming replica of pg, when started
	redis   *redisServer                 // a single Redis, or
	shards  *dbtest.RedisFailoverCluster // a Redis Cluster with a replica per master
	secret  string
	pool    *pgxpool.Pool
}

// newCluster starts Postgres and a single Redis.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterOn(t, startRedis(t), nil)
}

// newShardedCluster starts Postgres and a Redis Cluster of three masters
// with a replica each; the processes reach it through
// REDIS_CLUSTER_ADDRS.
func newShardedCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterOn(t, nil, dbtest.NewRedisFailoverCluster(t))
}

func newClusterOn(t *testing.T, redis *redisServer, shards *dbtest.RedisFailoverCluster) *cluster {
	t.Helper()
	c := &cluster{t: t, pg: startPostgres(t), redis: redis, shards: shards, secret: "chaos-test-secret-0123456789abcdef0123456789"}
	admin := exec.Command(filepath.Join(binDir, "admin"), "migrate", "up", "--create-database")
	admin.Env = append(os.Environ(), "DATABASE_URL="+c.pg.url())
	if out, err := admin.CombinedOutput(); err != nil {
		t.Fatalf("admin migrate up: %v: %s", err, out)
	}
	pool, err := pgxpool.New(context.Background(), c.pg.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c.pool = pool
	return c
}

func (c *cluster) commonEnv() []string {
	env := []string{"DATABASE_URL=" + c.databaseURL(), "REDIS_PREFIX=" + redisPrefix}
	if c.shards != nil {
		return append(env, "REDIS_CLUSTER_ADDRS="+strings.Join(c.shards.Addrs(), ","))
	}
	return append(env, "REDIS_URL="+c.redis.url())
}

// redisPrefix is the processes' REDIS_PREFIX.
const redisPrefix = "chaos:"

// runner starts a runner; extra env entries override the defaults.
func (c *cluster) runner(name string, extra ...string) *proc {
	c.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	env := append(c.commonEnv(), "RUNNER_ADDR="+addr, "RUNNER_ID="+name, "RUNNER_LEASE_TTL=6s", "RUNNER_SHUTDOWN_TIMEOUT=10s",
		"CLEANUP_SCHEDULE=off")
	return startProc(c.t, name, "runner", addr, "/readyz", append(env, extra...))
}

// gateway starts a gateway.
func (c *cluster) gateway(name string, extra ...string) *proc {
	c.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	env := append(c.commonEnv(), "GATEWAY_ADDR="+addr, "AUTH_SECRET="+c.secret, "RATE_LIMIT_PER_SECOND=0",
		"GATEWAY_DB_TIMEOUT=2s", "DATABASE_MAX_CONNS=40")
	return startProc(c.t, name, "gateway", addr, "/readyz", append(env, extra...))
}

// admin starts the admin server with token as its operator token.
func (c *cluster) admin(name, token string) *proc {
	c.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	env := append(c.commonEnv(), "ADMIN_ADDR="+addr, "ADMIN_TOKEN="+token)
	return startProc(c.t, name, "admin", addr, "/healthz", env, "serve")
}

func (c *cluster) scalar(sql string, args ...any) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	if err := c.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// summary runs sql, which selects a label and a count, and joins the rows
// as "label: count", for failure messages.
func (c *cluster) summary(sql string, args ...any) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := c.pool.Query(ctx, sql, args...)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var label string
		var n int
		if err := rows.Scan(&label, &n); err != nil {
			return err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s: %d", label, n))
	}
	return strings.Join(parts, "; ")
}
