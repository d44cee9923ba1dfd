package dbtest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a PgBouncer in transaction pooling mode in front of the
// test PostgreSQL, private to one test.
type PgBouncer struct {
	t      testing.TB
	dir    string
	port   int
	target *pgx.ConnConfig
	cmd    *exec.Cmd
	exited chan struct{}
}

// NewPgBouncer starts PgBouncer (the Debian package pgbouncer, which make
// test installs) on a free loopback port in transaction pooling mode, with
// poolSize server connections per database and user, in front of the
// server of databaseURL. It is stopped when t ends.
func NewPgBouncer(t testing.TB, databaseURL string, poolSize int) *PgBouncer {
	t.Helper()
	if _, err := exec.LookPath("pgbouncer"); err != nil {
		t.Fatal("dbtest: pgbouncer is not installed: install the Debian package pgbouncer (make test does, as root: scripts/scale-deps.sh)")
	}
	target, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		t.Fatalf("dbtest: pgbouncer target: %v", err)
	}
	dir, err := os.MkdirTemp("", "msgrunner-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	b := &PgBouncer{t: t, dir: dir, port: ports[0], target: target}
	conf := fmt.Sprintf(`[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 2000
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, target.Host, target.Port, b.port, filepath.Join(dir, "users.txt"), poolSize,
		filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	users := fmt.Sprintf("%q \"\"\n", target.User)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	// PgBouncer refuses to run as root; as root, run it as postgres.
	if os.Geteuid() == 0 {
		if err := chownToPostgres(dir); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		b.Stop()
		_ = os.RemoveAll(dir)
	})
	b.Start()
	return b
}

// chownToPostgres hands dir and its files to the postgres user.
func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("dbtest: pgbouncer cannot run as root and there is no postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}

// Start starts PgBouncer (again, after Stop) and waits until it accepts
// connections.
func (b *PgBouncer) Start() {
	b.t.Helper()
	cmd := exec.Command("pgbouncer", filepath.Join(b.dir, "pgbouncer.ini"))
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			b.t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("dbtest: starting pgbouncer: %v", err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(b.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.exited:
			log, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
			b.t.Fatalf("dbtest: pgbouncer exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("dbtest: pgbouncer not accepting connections on %s: %v", b.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops PgBouncer (SIGINT: at once, closing every connection) and
// waits for it to exit.
func (b *PgBouncer) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd = nil
}

// Addr returns PgBouncer's host:port.
func (b *PgBouncer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// URL returns databaseURL (on the server PgBouncer fronts) pointed at
// PgBouncer instead, with the query exec mode that transaction pooling
// needs: pgx's default caches named prepared statements per connection,
// which PgBouncer 1.18 cannot carry from one server connection to another;
// cache_describe uses the unnamed statement only and still knows the
// parameter types (exec does not, and cannot encode a list of uuids).
func (b *PgBouncer) URL(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		b.t.Fatalf("dbtest: pgbouncer: %q is not a postgres:// URL", databaseURL)
	}
	u.Host = b.Addr()
	q := u.Query()
	q.Set("default_query_exec_mode", "cache_describe")
	u.RawQuery = q.Encode()
	return u.String()
}
