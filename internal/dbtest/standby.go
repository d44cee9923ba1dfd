package dbtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db"
)

// PostgresPair is a PostgreSQL primary with a streaming standby, private
// to one test, on free loopback ports, the schema migrated: for the tests
// of reads served by a replica. Both are stopped and removed when the test
// ends. The servers come from the machine's postgresql package and run as
// the postgres user when the test runs as root.
type PostgresPair struct {
	t                testing.TB
	bin              string
	primary, standby *pgServer
}

type pgServer struct {
	dir  string
	port int
}

// NewPostgresPair starts a PostgresPair for t.
func NewPostgresPair(t testing.TB) *PostgresPair {
	t.Helper()
	bin, err := PostgresBin()
	if err != nil {
		t.Fatal(err)
	}
	p := &PostgresPair{t: t, bin: bin}
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	p.primary = &pgServer{dir: p.newDir(), port: ports[0]}
	p.standby = &pgServer{dir: p.newDir(), port: ports[1]}
	for _, s := range []*pgServer{p.primary, p.standby} {
		t.Cleanup(func() {
			_ = p.ctl(s, "-m", "immediate", "stop")
			_ = os.RemoveAll(s.dir)
		})
	}
	p.run("initdb", "-D", p.data(p.primary), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	p.start(p.primary)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.EnsureDatabase(ctx, p.PrimaryURL()); err != nil {
		t.Fatal(err)
	}
	m, err := db.NewMigrator(p.PrimaryURL(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	p.run("pg_basebackup", "-D", p.data(p.standby), "-h", "127.0.0.1", "-p", strconv.Itoa(p.primary.port),
		"-U", "postgres", "-X", "stream", "-R", "-c", "fast", "--no-sync")
	p.start(p.standby)
	p.waitStreaming(ctx)
	return p
}

// PrimaryURL and StandbyURL are the servers' connection strings, for the
// database msgrunner.
func (p *PostgresPair) PrimaryURL() string { return pgURL(p.primary.port) }

// StandbyURL: see PrimaryURL.
func (p *PostgresPair) StandbyURL() string { return pgURL(p.standby.port) }

func pgURL(port int) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/msgrunner?sslmode=disable", port)
}

// PauseReplay stops the standby applying WAL (pg_wal_replay_pause) and
// waits until it has paused, so what the primary commits next is not
// replayed; ResumeReplay lets it catch up.
func (p *PostgresPair) PauseReplay() {
	p.t.Helper()
	p.standbyExec("SELECT pg_wal_replay_pause()")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.StandbyURL())
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		var state string
		if err := conn.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err != nil {
			p.t.Fatalf("dbtest: waiting for the standby to pause: %v", err)
		}
		if state == "paused" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ResumeReplay: see PauseReplay.
func (p *PostgresPair) ResumeReplay() { p.standbyExec("SELECT pg_wal_replay_resume()") }

// StopStandby stops the standby (fast); StartStandby starts it again.
func (p *PostgresPair) StopStandby() {
	if err := p.ctl(p.standby, "-m", "fast", "stop"); err != nil {
		p.t.Fatal(err)
	}
}

// StartStandby: see StopStandby.
func (p *PostgresPair) StartStandby() { p.start(p.standby) }

func (p *PostgresPair) standbyExec(sql string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.StandbyURL())
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		p.t.Fatal(err)
	}
}

func (p *PostgresPair) waitStreaming(ctx context.Context) {
	p.t.Helper()
	for {
		conn, err := pgx.Connect(ctx, p.PrimaryURL())
		if err == nil {
			var n int
			err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").Scan(&n)
			conn.Close(ctx)
			if err == nil && n == 1 {
				return
			}
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("dbtest: the standby did not start streaming: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *PostgresPair) data(s *pgServer) string { return filepath.Join(s.dir, "data") }

func (p *PostgresPair) newDir() string {
	p.t.Helper()
	dir, err := os.MkdirTemp("", "msgrunner-pgpair-")
	if err != nil {
		p.t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := chownToPostgres(dir); err != nil {
			p.t.Fatal(err)
		}
	}
	return dir
}

func (p *PostgresPair) start(s *pgServer) {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off", s.port, s.dir)
	if err := p.ctl(s, "-l", filepath.Join(s.dir, "log"), "-o", opts, "start"); err != nil {
		p.t.Fatal(err)
	}
}

func (p *PostgresPair) ctl(s *pgServer, args ...string) error {
	out, err := p.command("pg_ctl", append([]string{"-D", p.data(s), "-w", "-t", "60"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dbtest: pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (p *PostgresPair) run(name string, args ...string) {
	p.t.Helper()
	if out, err := p.command(name, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("dbtest: %s: %v: %s", name, err, out)
	}
}

// command runs a server binary, as the postgres user when we are root
// (PostgreSQL refuses to run as root).
func (p *PostgresPair) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("postgres"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
	}
	return cmd
}

// PostgresBin returns the directory of the newest installed PostgreSQL
// server binaries (initdb, pg_ctl, pg_basebackup), for tests that run
// servers of their own.
func PostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("dbtest: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: install the postgresql package (make services does, as root)")
}
