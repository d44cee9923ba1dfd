//go:build chaos

package chaos

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// takenFrom counts jobs the lease rescuer handed back from a runner whose
// id starts with name.
func (c *cluster) takenFrom(name string) int {
	return c.scalar(`SELECT count(*) FROM river_job j WHERE EXISTS (
		SELECT 1 FROM unnest(j.errors) e WHERE e->>'error' LIKE 'runner ' || $1 || '% lost its lease%')`, name)
}

// heldBy counts jobs shown as running under a runner whose id starts with
// name.
func (c *cluster) heldBy(name string) int {
	return c.scalar(`SELECT count(*) FROM river_job WHERE state = 'running' AND attempted_by[array_upper(attempted_by, 1)] LIKE $1 || '%'`, name)
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not after %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// 1. A runner is SIGKILLed while 5,000 messages flow; a new one starts.
// Every message is stored once, delivered, and its jobs completed once;
// the jobs the dead runner held are worked again within 60 s (its lease
// expires; the new runner hands them back).
func TestRunnerKilledWhileMessagesAreInFlight(t *testing.T) {
	c := newCluster(t)
	g := c.gateway("gateway-1")
	a := c.runner("runner-a")
	w := newWorld(t, c, 50, g)
	sending := w.start(100, 400)

	waitFor(t, "2,000 messages sent", time.Minute, func() bool { return w.sent.Load() >= 2000 })
	waitFor(t, "runner-a holding jobs", 30*time.Second, func() bool { return c.heldBy("runner-a") > 0 })
	a.kill()
	killed := time.Now()
	// A statement the runner sent just before it died (a fetch) still
	// runs and commits on its backend; count what it holds once Postgres
	// has ended every session of the dead runner, the only runner yet.
	waitFor(t, "the dead runner's database sessions ended", 30*time.Second, func() bool {
		return c.scalar(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'msgrunner-runner'`) == 0
	})
	held := c.heldBy("runner-a")
	if held == 0 {
		t.Fatal("the killed runner held no job: the test proves nothing")
	}
	c.runner("runner-b")
	<-sending
	waitFor(t, "the dead runner's jobs handed back", 60*time.Second, func() bool { return c.heldBy("runner-a") == 0 })
	recovery := time.Since(killed)
	if recovery > 60*time.Second {
		t.Fatalf("the dead runner's jobs were handed back %.1fs after the kill (at most 60 s)", recovery.Seconds())
	}
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(90 * time.Second)
	if w.sent.Load() != 5000 {
		t.Fatalf("%d of 5000 messages acknowledged", w.sent.Load())
	}
	if n := c.takenFrom("runner-b"); n != 0 {
		t.Fatalf("%d jobs were taken from the live runner", n)
	}
	if n := c.takenFrom("runner-a"); n != held {
		t.Fatalf("%d jobs held by the dead runner, %d handed back by the lease rescuer", held, n)
	}
	w.report("runner-killed", "SIGKILL runner with "+strconv.Itoa(held)+" jobs running", recovery, rerun)
}

// 5. A busy runner gets SIGTERM: it stops within its deadline, jobs in
// flight finish (or are handed back), and the next runner completes the
// rest; no job runs twice.
func TestGracefulStopOfABusyRunner(t *testing.T) {
	c := newCluster(t)
	g := c.gateway("gateway-1")
	a := c.runner("runner-a")
	w := newWorld(t, c, 40, g)
	sending := w.start(50, 400)

	waitFor(t, "800 messages sent", time.Minute, func() bool { return w.sent.Load() >= 800 })
	waitFor(t, "runner-a holding jobs", 30*time.Second, func() bool { return c.heldBy("runner-a") > 0 })
	held := c.heldBy("runner-a")
	start := time.Now()
	a.term(20 * time.Second) // RUNNER_SHUTDOWN_TIMEOUT is 10s
	stopped := time.Since(start)
	if n := c.heldBy("runner-a"); n != 0 {
		t.Fatalf("%d jobs left running under the stopped runner", n)
	}
	c.runner("runner-b")
	<-sending
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(90 * time.Second)
	if rerun != 0 {
		t.Fatalf("%d jobs ran more than once after a graceful stop", rerun)
	}
	w.report("graceful-stop", "SIGTERM runner with "+strconv.Itoa(held)+" jobs running (stopped in "+stopped.Round(time.Millisecond).String()+")", stopped, rerun)
}

// 3. Redis is stopped for 20 s under load, then started (empty: it keeps
// nothing on disk). No message is lost, sends keep succeeding, and the
// connected clients (resuming on resync) have everything soon after.
func TestRedisOutageUnderLoad(t *testing.T) {
	c := newCluster(t)
	g := c.gateway("gateway-1")
	c.runner("runner-a")
	w := newWorld(t, c, 40, g)
	sending := w.start(150, 200) // 6,000 messages over ~30 s

	waitFor(t, "1,000 messages sent", time.Minute, func() bool { return w.sent.Load() >= 1000 })
	c.redis.stop()
	down := time.Now()
	sentBefore := w.sent.Load()
	time.Sleep(20 * time.Second)
	sentDuring := w.sent.Load() - sentBefore
	if sentDuring == 0 {
		t.Fatal("no message was accepted while Redis was down: Postgres alone must be enough to send")
	}
	c.redis.start()
	up := time.Now()
	// Deliveries resume: a frame for a message acknowledged after Redis
	// came back arrives.
	resumed := waitFor(t, "deliveries resume after Redis returns", 30*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.lastSeen.After(up)
	})
	<-sending
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(2 * time.Minute)
	if resumed > 5*time.Second {
		t.Errorf("deliveries resumed %.1fs after Redis returned (target 5 s)", resumed.Seconds())
	}
	w.report("redis-outage", "Redis stopped "+time.Since(down).Round(time.Second).String()+" before the end, down 20s; "+strconv.FormatInt(sentDuring, 10)+" messages accepted while down", resumed, rerun)
}

// 4. Postgres restarts under load. The gateway answers 503 while it is
// down (senders retry with the same id), runner, gateway and admin server
// reconnect by themselves, and no message or job is lost or half written.
func TestPostgresRestartUnderLoad(t *testing.T) {
	c := newCluster(t)
	g := c.gateway("gateway-1")
	r := c.runner("runner-a")
	admin := c.admin("admin", "chaos-admin-token-0123456789")
	w := newWorld(t, c, 40, g)
	sending := w.start(100, 250) // 4,000 messages over ~16 s

	waitFor(t, "1,000 messages sent", time.Minute, func() bool { return w.sent.Load() >= 1000 })
	c.pg.stop("fast")
	time.Sleep(5 * time.Second)
	c.pg.start()
	recovery := waitFor(t, "runner and gateway ready again", time.Minute, func() bool { return r.ready() && g.ready() })
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin.addr+"/queue/metrics", nil)
	req.Header.Set("Authorization", "Bearer chaos-admin-token-0123456789")
	waitFor(t, "admin API answers from the database again", time.Minute, func() bool {
		resp, err := httpClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	<-sending
	if w.unavailable.Load() == 0 && w.failures.Load() == 0 {
		t.Fatal("no send failed while Postgres was down: the outage did not happen")
	}
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(2 * time.Minute)
	// A runner that could not renew its lease for TTL/2 fenced itself and
	// rejoined under a new id: one more lease row.
	leases := c.scalar(`SELECT count(*) FROM runner_leases WHERE runner_id LIKE 'runner-a%'`)
	w.report("postgres-restart", "Postgres stopped (fast) for 5s; runner leases taken "+strconv.Itoa(leases), recovery, rerun)
}

// 2. Two runners and two gateways under load; one of each is SIGKILLed.
// The others carry on: senders and receivers move to the live gateway,
// the live runner takes over the dead one's jobs, nothing is lost.
func TestKillOneOfTwoRunnersAndGateways(t *testing.T) {
	c := newCluster(t)
	g1 := c.gateway("gateway-1")
	g2 := c.gateway("gateway-2")
	a := c.runner("runner-a")
	c.runner("runner-b")
	w := newWorld(t, c, 50, g1, g2)
	sending := w.start(80, 300) // 4,000 messages

	waitFor(t, "1,500 messages sent", time.Minute, func() bool { return w.sent.Load() >= 1500 })
	waitFor(t, "runner-a holding jobs", 30*time.Second, func() bool { return c.heldBy("runner-a") > 0 })
	a.kill()
	g1.kill()
	killed := time.Now()
	<-sending
	waitFor(t, "the dead runner's jobs handed back", 60*time.Second, func() bool { return c.heldBy("runner-a") == 0 })
	recovery := time.Since(killed)
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(90 * time.Second)
	if n := c.takenFrom("runner-b"); n != 0 {
		t.Fatalf("%d jobs were taken from the live runner", n)
	}
	w.report("two-of-each", "SIGKILL one of two runners and one of two gateways", recovery, rerun)
}

// 6. On a Redis Cluster with a replica per master, under load through two
// gateways and two runners, one master is SIGKILLed and the cluster
// promotes its replica. Nothing is lost: the gateways subscribe the
// channels of that shard's users again on the new master and tell their
// sockets to resync, and every acknowledged message reaches its recipient.
// Recovery is the time until every recipient on the killed shard received
// a message frame again.
func TestRedisClusterMasterKilledUnderLoad(t *testing.T) {
	c := newShardedCluster(t)
	g1, g2 := c.gateway("gateway-1"), c.gateway("gateway-2")
	c.runner("runner-a")
	c.runner("runner-b")
	w := newWorld(t, c, 48, g1, g2)
	sending := w.start(100, 240) // 4,800 messages over ~20 s
	ctx := context.Background()

	waitFor(t, "1,000 messages sent", time.Minute, func() bool { return w.sent.Load() >= 1000 })
	keys := fanout.Keys{Prefix: redisPrefix}
	victim, err := c.shards.MasterOf(ctx, keys.UserChannel(w.pairs[0].recipient))
	if err != nil {
		t.Fatal(err)
	}
	var onShard []uuid.UUID
	for _, p := range w.pairs {
		addr, err := c.shards.MasterOf(ctx, keys.UserChannel(p.recipient))
		if err != nil {
			t.Fatal(err)
		}
		if addr == victim {
			onShard = append(onShard, p.recipient)
		}
	}
	c.shards.Kill(victim)
	killed := time.Now()
	recovery := waitFor(t, "every recipient on the killed shard receiving again", 30*time.Second, func() bool {
		return w.allSeenSince(onShard, killed)
	})
	<-sending
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(2 * time.Minute)
	if recovery > 15*time.Second {
		t.Errorf("recipients on the killed shard received again %.1fs after the kill (target 15 s)", recovery.Seconds())
	}
	w.report("redis-master-killed", "SIGKILL one of three Redis Cluster masters ("+strconv.Itoa(len(onShard))+" of "+strconv.Itoa(len(w.pairs))+" recipients on it), its replica promoted", recovery, rerun)
}

// 7. Postgres with a synchronous streaming standby, under load through
// two gateways and two runners that reach it through a multi-host
// DATABASE_URL with target_session_attrs=read-write. The primary is
// SIGKILLed and the standby promoted (pg_ctl promote), as an HA manager
// would. Sends answer 503 meanwhile and are retried with their ids;
// afterwards every acknowledged message is stored once and delivered, and
// every job finishes. Recovery is from the promotion until a send is
// acknowledged again.
func TestPostgresFailoverUnderLoad(t *testing.T) {
	c := newCluster(t)
	c.addStandby()
	g1, g2 := c.gateway("gateway-1"), c.gateway("gateway-2")
	ra, rb := c.runner("runner-a"), c.runner("runner-b")
	w := newWorld(t, c, 40, g1, g2)
	sending := w.start(100, 200) // 4,000 messages over ~20 s

	waitFor(t, "1,000 messages sent", time.Minute, func() bool { return w.sent.Load() >= 1000 })
	c.pg.kill()
	killed := time.Now()
	sentAtKill := w.sent.Load()
	if err := c.standby.ctl("promote"); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	recovery := waitFor(t, "a send acknowledged by the promoted server", time.Minute, func() bool { return w.sent.Load() > sentAtKill+10 })
	waitFor(t, "runners and gateways ready on the promoted server", time.Minute, func() bool {
		return ra.ready() && rb.ready() && g1.ready() && g2.ready()
	})
	<-sending
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(2 * time.Minute)
	if recovery > 15*time.Second {
		t.Errorf("sends acknowledged again %.1fs after the promotion (target 15 s)", recovery.Seconds())
	}
	leases := c.scalar(`SELECT count(*) FROM runner_leases`)
	w.report("postgres-failover", "SIGKILL the primary, promote the synchronous standby "+promoted.Sub(killed).Round(time.Millisecond).String()+" later; runner leases taken "+strconv.Itoa(leases), recovery, rerun)
}

// 8. Gateways reach Postgres through PgBouncer in transaction mode (the
// runner directly, as docs/operations.md says). Under load PgBouncer is
// stopped for 3 s and started again: sends answer 503 meanwhile and are
// retried with their ids; the gateways reconnect by themselves, and
// nothing is lost or stored twice. Recovery is from the restart until a
// send is acknowledged again.
func TestPgBouncerRestartUnderLoad(t *testing.T) {
	c := newCluster(t)
	bouncer := dbtest.NewPgBouncer(t, c.pg.url(), 10)
	pooled := "DATABASE_URL=" + bouncer.URL(c.pg.url())
	g1, g2 := c.gateway("gateway-1", pooled), c.gateway("gateway-2", pooled)
	c.runner("runner-a")
	w := newWorld(t, c, 40, g1, g2)
	sending := w.start(100, 250) // 4,000 messages over ~16 s

	waitFor(t, "1,000 messages sent", time.Minute, func() bool { return w.sent.Load() >= 1000 })
	bouncer.Stop()
	time.Sleep(3 * time.Second)
	bouncer.Start()
	sentAtStart := w.sent.Load()
	recovery := waitFor(t, "sends acknowledged through PgBouncer again", time.Minute, func() bool { return w.sent.Load() > sentAtStart+10 })
	<-sending
	if w.unavailable.Load() == 0 && w.failures.Load() == 0 {
		t.Fatal("no send failed while PgBouncer was down: the outage did not happen")
	}
	w.waitAllSeen(time.Minute)
	rerun := w.checkStored(2 * time.Minute)
	if recovery > 15*time.Second {
		t.Errorf("sends acknowledged again %.1fs after PgBouncer restarted (target 15 s)", recovery.Seconds())
	}
	w.report("pgbouncer-restart", "PgBouncer (transaction mode, 10 server connections) in front of both gateways stopped for 3s and started", recovery, rerun)
}
