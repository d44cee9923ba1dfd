// Package latency is the end-to-end latency probe the benchmarks share: a
// sender stamps a message's content with the time it was sent, and a
// receiver reading the recipient's websocket turns each message frame it
// gets into that message's age.
package latency

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

const stampPrefix = "t="

// Stamp returns message content that records now.
func Stamp(now time.Time) string { return stampPrefix + strconv.FormatInt(now.UnixNano(), 10) }

// Arrival is one stamped message frame as it arrived: its content (the
// stamp, unique per message) and the message's age.
type Arrival struct {
	Stamp string
	Age   time.Duration
}

// Receive reads frames from c until it fails or ctx ends: it closes ready
// at the "ready" frame and sends the age of each stamped message frame to
// received.
func Receive(ctx context.Context, c *websocket.Conn, ready chan struct{}, received chan<- time.Duration) {
	ReceiveEach(ctx, c, ready, func(a Arrival) { received <- a.Age })
}

// ReceiveEach is Receive handing each stamped message frame's arrival to
// fn, for callers that tell messages apart (the last of a group's frames
// of one message).
func ReceiveEach(ctx context.Context, c *websocket.Conn, ready chan struct{}, fn func(Arrival)) {
	once := sync.OnceFunc(func() { close(ready) })
	for {
		_, raw, err := c.Read(ctx)
		if err != nil {
			return
		}
		var f struct {
			Type    string `json:"type"`
			Content string `json:"content"`
		}
		if json.Unmarshal(raw, &f) != nil {
			continue
		}
		switch f.Type {
		case "ready":
			once()
		case "message":
			if !strings.HasPrefix(f.Content, stampPrefix) {
				continue
			}
			sent, err := strconv.ParseInt(strings.TrimPrefix(f.Content, stampPrefix), 10, 64)
			if err == nil {
				fn(Arrival{Stamp: f.Content, Age: time.Since(time.Unix(0, sent))})
			}
		}
	}
}
