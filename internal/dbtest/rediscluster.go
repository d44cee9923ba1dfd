package dbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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

	"github.com/redis/go-redis/v9"
)

// clusterMasters is how many masters a test cluster has: enough for keys
// of different users and conversations to land on different shards.
const clusterMasters = 3

// clusterShape is how a test cluster is built.
type clusterShape struct {
	replicas    int // per master
	nodeTimeout time.Duration
}

// sharedShape is the shape of the cluster RedisCluster shares between a
// test binary's tests: masters only.
var sharedShape = clusterShape{nodeTimeout: 5 * time.Second}

// clusterDirPrefix names the test cluster's temporary directory,
// msgrunner-rediscluster-<pid>-<random>, so a run can remove what a test
// process that died left behind.
const clusterDirPrefix = "msgrunner-rediscluster-"

// clusterRefs is the test binary's Redis Cluster and how many running tests
// use it: the first user starts it, the last one's cleanup stops it, so no
// redis-server outlives `go test`.
var clusterRefs struct {
	mu sync.Mutex
	n  int
	c  *testCluster
}

// testCluster is a Redis Cluster of redis-server processes on free
// loopback ports, each with its data in a directory under dir.
type testCluster struct {
	shape clusterShape
	dir   string
	addrs []string
	procs []*exec.Cmd
	// exited holds, per process, a channel closed once it has exited and
	// been waited for.
	exited []chan struct{}
}

// RedisCluster returns a cluster client on a real Redis Cluster of three
// masters, private to this test binary, and a key and channel prefix unique
// to this test ("msgrunner_test:<pid>:<n>:"). The cluster is started from
// the machine's redis-server and redis-cli (the Debian package
// redis-server) on free loopback ports when the first test asks for it,
// and stopped, its processes ended and its directory removed, when the
// last test using it ends; a test that starts after that starts a new one.
// Its servers are killed if the test binary dies. The shared test Redis is
// never touched. Safe for parallel tests.
func RedisCluster(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	c, err := acquireCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(releaseCluster)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, fmt.Sprintf("%s%d:%d:", redisPrefix, os.Getpid(), counter.Add(1))
}

func acquireCluster() (*testCluster, error) {
	clusterRefs.mu.Lock()
	defer clusterRefs.mu.Unlock()
	if clusterRefs.c == nil {
		c, err := startCluster(sharedShape)
		if err != nil {
			return nil, err
		}
		clusterRefs.c = c
	}
	clusterRefs.n++
	return clusterRefs.c, nil
}

func releaseCluster() {
	clusterRefs.mu.Lock()
	defer clusterRefs.mu.Unlock()
	clusterRefs.n--
	if clusterRefs.n == 0 && clusterRefs.c != nil {
		clusterRefs.c.stop()
		clusterRefs.c = nil
	}
}

// startCluster starts and joins the servers, retrying with other ports
// when one was taken by another process in between.
func startCluster(shape clusterShape) (*testCluster, error) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("dbtest: %s is not installed: install the redis-server package (apt-get install redis-server, or `make services`) to run the Redis Cluster tests", bin)
		}
	}
	removeStaleClusterDirs()
	var err error
	for range 3 {
		var c *testCluster
		if c, err = tryStartCluster(shape); err == nil {
			return c, nil
		}
	}
	return nil, err
}

func tryStartCluster(shape clusterShape) (_ *testCluster, err error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", clusterDirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("dbtest: redis cluster: %w", err)
	}
	c := &testCluster{shape: shape, dir: dir}
	nodes := clusterMasters * (1 + shape.replicas)
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	ports, err := freePorts(2 * nodes)
	if err != nil {
		return nil, err
	}
	for i := range nodes {
		port, busPort := ports[2*i], ports[2*i+1]
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			return nil, fmt.Errorf("dbtest: redis cluster: %w", err)
		}
		cmd := exec.Command("redis-server",
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(busPort),
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(shape.nodeTimeout.Milliseconds(), 10), "--dir", nodeDir, "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(nodeDir, "redis.log"))
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("dbtest: starting redis-server: %w", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		c.procs, c.exited = append(c.procs, cmd), append(c.exited, exited)
		c.addrs = append(c.addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, addr := range c.addrs {
		if err := c.waitNode(ctx, addr, func(rdb *redis.Client) error { return rdb.Ping(ctx).Err() }); err != nil {
			return nil, err
		}
	}
	args := append(append([]string{"--cluster", "create"}, c.addrs...), "--cluster-replicas", strconv.Itoa(shape.replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dbtest: redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, addr := range c.addrs {
		err := c.waitNode(ctx, addr, func(rdb *redis.Client) error {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			want := fmt.Sprintf("cluster_known_nodes:%d", nodes)
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, want) {
				return errors.New("cluster_state is not ok yet")
			}
			// A replica that has not synced yet could not take over.
			repl, err := rdb.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return errors.New("replica not in sync yet")
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// waitNode retries ready against the server at addr until it succeeds,
// that server exits or ctx ends.
func (c *testCluster) waitNode(ctx context.Context, addr string, ready func(*redis.Client) error) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	for {
		err := ready(rdb)
		if err == nil {
			return nil
		}
		if i := slices.Index(c.addrs, addr); i >= 0 {
			select {
			case <-c.exited[i]:
				return fmt.Errorf("dbtest: the redis-server at %s exited:\n%s", addr, c.logs())
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dbtest: redis cluster node %s not ready: %w\n%s", addr, err, c.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logs returns the tail of every server's log, for a failure message.
func (c *testCluster) logs() string {
	var b bytes.Buffer
	paths, _ := filepath.Glob(filepath.Join(c.dir, "*", "redis.log"))
	for _, p := range paths {
		out, _ := os.ReadFile(p)
		if len(out) > 2000 {
			out = out[len(out)-2000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", p, out)
	}
	return b.String()
}

// stop ends the servers (SIGTERM, then SIGKILL after 5 s), waits for them
// and removes their directory.
func (c *testCluster) stop() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range c.procs {
		select {
		case <-c.exited[i]:
		case <-time.After(5 * time.Second):
			_ = p.Process.Kill()
			<-c.exited[i]
		}
	}
	_ = os.RemoveAll(c.dir)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dbtest: finding a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// removeStaleClusterDirs removes the cluster directories of test processes
// that no longer run (their servers died with them).
func removeStaleClusterDirs() {
	paths, _ := filepath.Glob(filepath.Join(os.TempDir(), clusterDirPrefix+"*"))
	for _, p := range paths {
		pid := strings.SplitN(strings.TrimPrefix(filepath.Base(p), clusterDirPrefix), "-", 2)[0]
		if !processAlive(testDBPrefix + pid) {
			_ = os.RemoveAll(p)
		}
	}
}
