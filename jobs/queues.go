package jobs

import (
	"fmt"
	"strings"
	"time"
)

// Queue names, as in the earlier design.
const (
	QueueMessageDelivery     = "message-delivery"
	QueueMessageNotification = "message-notification"
	QueueMessageIndexing     = "message-indexing"
	QueueMessageEncryption   = "message-encryption"
	QueueBatchMessageSending = "batch-message-sending"
	QueueMessageCleanup      = "message-cleanup"
)

// Backoff is how retry delays grow with attempts.
type Backoff int

const (
	// BackoffExponential waits Base·2^(attempt−1) after failed attempt n.
	BackoffExponential Backoff = iota
	// BackoffFixed waits Base after every failed attempt.
	BackoffFixed
)

// QueueSpec is one queue's settings for a runner: how many workers it runs
// and the retry schedule and timeout shared by the kinds in it.
type QueueSpec struct {
	Name      string
	Workers   int
	RetryBase time.Duration
	Backoff   Backoff
	Timeout   time.Duration
	// FetchCooldown is the least time between two fetches of this queue;
	// zero means the runner's (RIVER_FETCH_COOLDOWN). A longer one makes
	// fewer, larger fetches: cheaper for queues whose jobs can wait a few
	// milliseconds.
	FetchCooldown time.Duration
}

// RetryDelay returns how long to wait after failed attempt number attempt
// (1-based) before the next one.
func (q QueueSpec) RetryDelay(attempt int) time.Duration {
	if q.Backoff == BackoffFixed || attempt < 1 {
		return q.RetryBase
	}
	// Cap the exponent: no schedule here needs more than 2^20 × base, and
	// the cap keeps the shift from overflowing.
	return q.RetryBase << min(attempt-1, 20)
}

// DefaultSideFetchCooldown is the fetch cooldown of the queues of side
// work that no one waits for to the millisecond (notifications, search
// indexing): fetching at most every 20 ms takes more jobs per fetch than
// the runner's 2 ms, for less Postgres work per job.
const DefaultSideFetchCooldown = 20 * time.Millisecond

// DefaultDeliveryWorkers is the message-delivery queue's worker count per
// runner. The earlier design had 10; River fetches at most as many jobs as
// there are free workers, so a queue's throughput is its workers over the
// time a job holds one (the fetch's round trip, then the work), and 10
// workers drain about 2,000–2,400 send-message jobs/s on two cores. With
// 50 the jobs running at once share their delivery batches (one read, one
// Redis round trip, one mark) and the same runner drains 3,500–6,300 a
// second. A worker is a goroutine; the batches use at most two
// connections, and delivery-confirmation jobs wait for a pool connection
// like any other.
const DefaultDeliveryWorkers = 50

// DefaultQueues returns the queue table of the design: worker counts per
// runner, retry base and timeout (message-delivery's workers raised to
// DefaultDeliveryWorkers). Callers may modify the returned slice.
func DefaultQueues() []QueueSpec {
	return []QueueSpec{
		{Name: QueueMessageDelivery, Workers: DefaultDeliveryWorkers, RetryBase: 2 * time.Second, Timeout: 30 * time.Second},
		{Name: QueueMessageNotification, Workers: 15, RetryBase: 1 * time.Second, Timeout: 20 * time.Second, FetchCooldown: DefaultSideFetchCooldown},
		{Name: QueueMessageIndexing, Workers: 3, RetryBase: 3 * time.Second, Timeout: 60 * time.Second, FetchCooldown: DefaultSideFetchCooldown},
		{Name: QueueMessageEncryption, Workers: 5, RetryBase: 2 * time.Second, Timeout: 45 * time.Second},
		{Name: QueueBatchMessageSending, Workers: 2, RetryBase: 5 * time.Second, Timeout: 5 * time.Minute},
		{Name: QueueMessageCleanup, Workers: 1, RetryBase: 10 * time.Second, Backoff: BackoffFixed, Timeout: 10 * time.Minute},
	}
}

// QueueNames returns the names of DefaultQueues, in the same order.
func QueueNames() []string {
	qs := DefaultQueues()
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Name
	}
	return names
}

// Priority is a job priority by name; River runs lower numbers first.
type Priority int

// Priorities, mapped onto River priorities 1–4.
const (
	PriorityCritical Priority = 1
	PriorityHigh     Priority = 2
	PriorityNormal   Priority = 3
	PriorityLow      Priority = 4
)

var priorityNames = map[string]Priority{
	"critical": PriorityCritical,
	"high":     PriorityHigh,
	"normal":   PriorityNormal,
	"low":      PriorityLow,
}

// ParsePriority maps critical, high, normal and low (any case) to their
// River priorities; anything else is an error that names the valid values.
func ParsePriority(name string) (Priority, error) {
	if p, ok := priorityNames[strings.ToLower(name)]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("unknown priority %q (want critical, high, normal or low)", name)
}

// String returns the priority's name.
func (p Priority) String() string {
	for name, v := range priorityNames {
		if v == p {
			return name
		}
	}
	return fmt.Sprintf("priority(%d)", int(p))
}

// Valid reports whether p is one of the four priorities.
func (p Priority) Valid() bool { return p >= PriorityCritical && p <= PriorityLow }
