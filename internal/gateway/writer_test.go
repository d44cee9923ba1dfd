package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

func TestWriterRunsOnlyWhileFramesWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := b.nodes[0].srv
	user := uuid.New()
	ws := b.dial(t, 0, b.token(t, user))
	idle := func() bool { return srv.WritersRunning() == 0 }
	require.Eventually(t, idle, 5*time.Second, 10*time.Millisecond, "an idle socket parks no writer")

	// Live frames and replies (pongs) interleaved: each arrives in its
	// order. Fewer frames than the socket's queue holds (DefaultSendBuffer),
	// so a writer slowed by a busy machine cannot overflow it: that would
	// be the slow-consumer close, another test's subject.
	ctx := context.Background()
	const frames, pings = 240, 6
	go func() {
		for i := range frames {
			if i%(frames/pings) == 0 {
				ws.write(map[string]any{"type": "ping", "ref": fmt.Sprint(i / (frames / pings))})
			}
			if err := b.rdb.Publish(ctx, b.keys.UserChannel(user), fmt.Sprintf(`{"type":"burst","n":%d}`, i)).Err(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	nextBurst, nextPong := 0, 0
	for nextBurst < frames || nextPong < pings {
		select {
		case f := <-ws.frames:
			switch f["type"] {
			case "burst":
				require.EqualValues(t, nextBurst, f["n"], "live frames in order")
				nextBurst++
			case "pong":
				require.Equal(t, fmt.Sprint(nextPong), f["ref"], "replies in order")
				nextPong++
			}
		case err := <-ws.closed:
			t.Fatalf("closed after %d frames and %d pongs: %v", nextBurst, nextPong, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d frames and %d pongs", nextBurst, nextPong)
		}
	}
	require.Eventually(t, idle, 5*time.Second, 10*time.Millisecond, "the writer stops once the queues are empty")

	// A frame to an idle socket starts a writer again.
	require.NoError(t, b.rdb.Publish(ctx, b.keys.UserChannel(user), `{"type":"burst","n":-1}`).Err())
	require.EqualValues(t, -1, ws.expect("burst", nil)["n"])
	require.Eventually(t, idle, 5*time.Second, 10*time.Millisecond)

	// Closing leaves no connection (and so no writer) behind.
	require.NoError(t, ws.c.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool { return srv.Connections() == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestSocketThatDoesNotReadIsClosedTooSlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	n := b.startNodeWith(t, nil, func(c *gateway.Config) { c.SendBuffer = 4 })
	user := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(n.base, "http", "ws", 1)+"/v1/ws?token="+b.token(t, user), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	_, raw, err := c.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"ready"`)

	// The client stops reading: the writer blocks once the socket buffers
	// are full, frames pile up in the subscription, and the hub drops it.
	pad := strings.Repeat("x", 64<<10)
	published := 0
	for n.srv.Dropped() == 0 {
		require.Less(t, published, 2000, "never dropped")
		require.NoError(t, b.rdb.Publish(ctx, b.keys.UserChannel(user), fmt.Sprintf(`{"type":"bulk","n":%d,"pad":%q}`, published, pad)).Err())
		published++
	}

	// Reading again, the client gets frames in order, then the close.
	next := 0
	for {
		_, raw, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			require.True(t, errors.As(err, &ce), "closed without a close frame: %v", err)
			require.Equal(t, websocket.StatusPolicyViolation, ce.Code)
			require.Contains(t, ce.Reason, "too slow")
			break
		}
		var f struct {
			N int `json:"n"`
		}
		require.NoError(t, json.Unmarshal(raw, &f))
		require.Equal(t, next, f.N, "frames in order")
		next++
	}
	t.Logf("%d frames published, %d delivered before the close", published, next)
	require.Less(t, next, published, "frames past the buffer were dropped")
	require.Eventually(t, func() bool { return n.srv.Connections() == 0 }, 10*time.Second, 10*time.Millisecond)
}

// A client may send its first frame right behind its handshake, before
// the upgrade is answered: those bytes reach net/http's read buffer, and
// the websocket must still read them.
func TestFrameSentWithTheHandshakeIsRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nc, err := net.Dial("tcp", strings.TrimPrefix(b.nodes[0].base, "http://"))
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(20*time.Second)))

	payload := []byte(`{"type":"ping","ref":"early"}`)
	key := []byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(payload))}, key...) // FIN text, masked
	for i, c := range payload {
		frame = append(frame, c^key[i%4])
	}
	handshake := "GET /v1/ws?token=" + b.token(t, uuid.New()) + " HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_, err = nc.Write(append([]byte(handshake), frame...))
	require.NoError(t, err)

	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	for {
		hdr := make([]byte, 2)
		_, err := io.ReadFull(br, hdr)
		require.NoError(t, err)
		require.Less(t, hdr[1]&0x7f, byte(126), "small unmasked frames only")
		body := make([]byte, hdr[1]&0x7f)
		_, err = io.ReadFull(br, body)
		require.NoError(t, err)
		var f map[string]any
		require.NoError(t, json.Unmarshal(body, &f), "%q", body)
		if f["type"] == "pong" {
			require.Equal(t, "early", f["ref"])
			return
		}
	}
}
