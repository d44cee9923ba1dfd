// Package perf holds the benchmarks that run the real runner and gateway
// binaries as processes of their own (built once per `go test` run, like
// tests/chaos does) against the local PostgreSQL and Redis, so their
// memory and CPU can be read from /proc apart from the load generator's:
// BenchmarkGatewayCapacity and BenchmarkResources. They run only with
// -bench (`make bench`); `go test ./...` finds no tests here.
package perf

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

// secret signs the benchmark's tokens; the gateways get it as AUTH_SECRET.
const secret = "perf-bench-secret-0123456789abcdef0123456789"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/runner and cmd/gateway once per process and returns
// the directory holding them.
func binaries(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "msgrunner-perf-bin-")
		if buildErr != nil {
			return
		}
		wd, _ := os.Getwd()
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/runner", "./cmd/gateway")
		cmd.Dir = filepath.Join(wd, "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the binaries: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binDir
}

// raiseFileLimit lifts the soft open-files limit to at least need (up to
// the hard limit); processes started afterwards inherit it.
func raiseFileLimit(b *testing.B, need uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		b.Fatalf("open-files hard limit is %d, need %d: raise it (ulimit -Hn) or lower the connection count", lim.Max, need)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("raising the open-files limit to %d: %v", lim.Max, err)
	}
}

// world is one benchmark run's database, Redis prefix and token issuer.
type world struct {
	dbURL, redisURL, prefix string
	rdb                     *redis.Client
	auth                    *auth.Authority
}

func newWorld(b *testing.B) *world {
	b.Helper()
	rdb, prefix := dbtest.Redis(b)
	a, err := auth.New([]byte(secret))
	if err != nil {
		b.Fatal(err)
	}
	o := rdb.Options()
	return &world{
		dbURL: dbtest.URL(b), rdb: rdb, prefix: prefix, auth: a,
		redisURL: fmt.Sprintf("redis://%s/%d", o.Addr, o.DB),
	}
}

func (w *world) token(b *testing.B, user uuid.UUID) string {
	b.Helper()
	tok, err := w.auth.Mint(user, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// proc is a runner or gateway process.
type proc struct {
	name, addr string
	cmd        *exec.Cmd
	done       chan struct{}
	log        string
}

func freeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs binary with the common environment plus env (empty entries
// are skipped) and waits until its /readyz answers 200.
func (w *world) start(b *testing.B, binary, name string, env ...string) *proc {
	b.Helper()
	addr := freeAddr(b)
	p := &proc{name: name, addr: addr, done: make(chan struct{}), log: filepath.Join(b.TempDir(), name+".log")}
	f, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	p.cmd = exec.Command(filepath.Join(binaries(b), binary))
	p.cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_LEVEL=warn",
		"DATABASE_URL=" + w.dbURL, "REDIS_URL=" + w.redisURL, "REDIS_PREFIX=" + w.prefix,
	}, slices.DeleteFunc(env, func(e string) bool { return e == "" })...)
	switch binary {
	case "runner":
		p.cmd.Env = append(p.cmd.Env, "RUNNER_ADDR="+addr, "RUNNER_ID="+name, "CLEANUP_SCHEDULE=off")
	case "gateway":
		p.cmd.Env = append(p.cmd.Env, "GATEWAY_ADDR="+addr, "AUTH_SECRET="+secret, "RATE_LIMIT_PER_SECOND=0")
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	b.Cleanup(p.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			b.Fatalf("%s exited before it was ready:\n%s", name, out)
		default:
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(p.log)
			b.Fatalf("%s is not ready after 60s:\n%s", name, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, and SIGKILL if the process is still there after 10 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// rssKiB reads a field (VmRSS, VmHWM) of /proc/<pid>/status in KiB.
func rssKiB(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

var (
	clkTckOnce sync.Once
	clkTck     = 100.0
)

// cpuSeconds returns utime+stime of pid from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	clkTckOnce.Do(func() {
		if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
			if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
				clkTck = v
			}
		}
	})
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ")"
	// start at field 3, so utime (14) and stime (15) are at 11 and 12.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return (u + st) / clkTck, nil
}

// selfCPUSeconds returns this process's user+system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakSampler samples the VmRSS of pids every 100 ms until stopped and
// returns the highest value of each, in MiB.
func peakSampler(ctx context.Context, pids ...int) func() []float64 {
	ctx, cancel := context.WithCancel(ctx)
	peaks := make([]int64, len(pids))
	var wg sync.WaitGroup
	wg.Add(1)
	sample := func() {
		for i, pid := range pids {
			if v, err := rssKiB(pid, "VmRSS"); err == nil && v > peaks[i] {
				peaks[i] = v
			}
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() []float64 {
		cancel()
		wg.Wait()
		sample()
		out := make([]float64, len(peaks))
		for i, v := range peaks {
			out[i] = float64(v) / 1024
		}
		return out
	}
}
