package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

// TestSecurityNoFrameReachesTheWrongUser is a property test: 40 users on
// two nodes (some with a socket on each), many concurrent senders in random
// direct conversations (over HTTP and over websocket send frames) and a few
// broadcasts worked by the runner. Every frame any socket receives is
// checked against what was sent: a message frame only ever reaches its
// recipient, in the conversation of its sender and recipient, with the
// content sent; every message reaches each of its recipient's sockets
// exactly once.
func TestSecurityNoFrameReachesTheWrongUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		users      = 40
		senders    = 8
		perSender  = 30
		broadcasts = 3
	)
	ids := make([]uuid.UUID, users)
	toks := make([]string, users)
	for i := range ids {
		ids[i] = uuid.New()
		toks[i] = b.token(t, ids[i])
	}

	// Sockets: user i on node i%2; every fourth user also on the other.
	type socket struct {
		user uuid.UUID
		c    *client
		mu   sync.Mutex // serialises this test's writes
	}
	var sockets []*socket
	byUser := map[uuid.UUID][]*socket{}
	for i, u := range ids {
		nodes := []int{i % 2}
		if i%4 == 0 {
			nodes = append(nodes, 1-i%2)
		}
		for _, n := range nodes {
			s := &socket{user: u, c: b.dial(t, n, toks[i])}
			sockets = append(sockets, s)
			byUser[u] = append(byUser[u], s)
		}
	}

	// What was sent, by content (unique per message).
	type sent struct{ from, to uuid.UUID }
	var mu sync.Mutex
	want := map[string]sent{}
	errs := make(chan error, senders*perSender+broadcasts)

	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for k := range perSender {
				si := rng.IntN(users)
				ri := rng.IntN(users - 1)
				if ri >= si {
					ri++
				}
				from, to := ids[si], ids[ri]
				content := fmt.Sprintf("p-%d-%d", g, k)
				mu.Lock()
				want[content] = sent{from, to}
				mu.Unlock()
				body := msgBody(gateway.DirectConversationID(from, to), to, content)
				if socks := byUser[from]; k%3 == 0 && len(socks) > 0 {
					// Over the sender's socket; its "sent" reply lands among
					// the frames checked below.
					s := socks[rng.IntN(len(socks))]
					body["type"] = "send"
					raw, _ := json.Marshal(body)
					s.mu.Lock()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := s.c.c.Write(ctx, websocket.MessageText, raw)
					cancel()
					s.mu.Unlock()
					if err != nil {
						errs <- fmt.Errorf("%s: %w", content, err)
					}
					continue
				}
				if err := postQuiet(b.nodes[rng.IntN(2)].base, toks[si], body); err != nil {
					errs <- fmt.Errorf("%s: %w", content, err)
				}
			}
		})
	}
	// Broadcasts: one sender to a random set of recipients, worked by the
	// runner's jobs (the other publishing path).
	bcast := map[string]map[uuid.UUID]bool{}
	bcastFrom := map[string]uuid.UUID{}
	for k := range broadcasts {
		rng := rand.New(rand.NewPCG(uint64(100+k), 7))
		si := rng.IntN(users)
		to := map[uuid.UUID]bool{}
		var list []string
		for len(list) < 6 {
			ri := rng.IntN(users)
			if ri == si || to[ids[ri]] {
				continue
			}
			to[ids[ri]] = true
			list = append(list, ids[ri].String())
		}
		content := fmt.Sprintf("b-%d", k)
		bcast[content], bcastFrom[content] = to, ids[si]
		wg.Go(func() {
			code, err := requestQuiet(http.MethodPost, b.nodes[k%2].base+"/v1/broadcasts", toks[si],
				map[string]any{"recipient_ids": list, "content": content, "chunk_size": 2})
			if err == nil && code != http.StatusAccepted {
				err = fmt.Errorf("broadcast answered %d", code)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", content, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// Expected deliveries per socket.
	expected := map[*socket]map[string]bool{}
	for _, s := range sockets {
		expected[s] = map[string]bool{}
	}
	for content, m := range want {
		for _, s := range byUser[m.to] {
			expected[s][content] = true
		}
	}
	for content, to := range bcast {
		for u := range to {
			for _, s := range byUser[u] {
				expected[s][content] = true
			}
		}
	}

	// Read every socket until it has what it should, checking each frame.
	deadline := time.Now().Add(45 * time.Second)
	var checked int
	for _, s := range sockets {
		got := map[string]int{}
		check := func(f map[string]any) {
			checked++
			switch f["type"] {
			case "message":
				content, _ := f["content"].(string)
				require.Equal(t, s.user.String(), f["recipient_id"], "a message frame reached a socket of someone else: %v", f)
				from, to := uuid.MustParse(f["sender_id"].(string)), uuid.MustParse(f["recipient_id"].(string))
				require.Equal(t, gateway.DirectConversationID(from, to).String(), f["conversation_id"], "%v", f)
				if m, ok := want[content]; ok {
					require.Equal(t, m.from, from, "%v", f)
					require.Equal(t, m.to, to, "%v", f)
				} else {
					require.True(t, bcast[content][s.user], "unexpected message frame %v", f)
					require.Equal(t, bcastFrom[content], from, "%v", f)
				}
				got[content]++
			case "notification":
				// In-app notifications name the message; only its
				// recipient may see them.
				var owner uuid.UUID
				require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT recipient_id FROM messages WHERE id = $1`, f["message_id"]).Scan(&owner))
				require.Equal(t, s.user, owner, "a notification reached someone else: %v", f)
			case "receipt":
				require.Fail(t, "no acks were sent, so no receipts", "%v", f)
			case "error":
				require.Fail(t, "error frame", "%v", f)
			}
		}
		for len(got) < len(expected[s]) {
			select {
			case f := <-s.c.frames:
				check(f)
			case err := <-s.c.closed:
				t.Fatalf("socket of %s closed: %v", s.user, err)
			case <-time.After(time.Until(deadline)):
				t.Fatalf("socket of %s got %d of %d messages", s.user, len(got), len(expected[s]))
			}
		}
		// Whatever else arrives shortly must pass the same checks.
		for quiet := time.After(200 * time.Millisecond); ; {
			select {
			case f := <-s.c.frames:
				check(f)
				continue
			case <-quiet:
			}
			break
		}
		for content := range expected[s] {
			require.Equal(t, 1, got[content], "socket of %s: %s received %d times", s.user, content, got[content])
		}
		require.Len(t, got, len(expected[s]), "socket of %s got messages it should not", s.user)
	}
	total := 0
	for _, e := range expected {
		total += len(e)
	}
	t.Logf("%d users, %d sockets, %d direct messages, %d broadcasts: %d deliveries expected, %d frames checked",
		users, len(sockets), len(want), broadcasts, total, checked)
}

// postQuiet posts a message without touching t (for goroutines).
func postQuiet(base, token string, body map[string]any) error {
	code, err := requestQuiet(http.MethodPost, base+"/v1/messages", token, body)
	if err == nil && code != http.StatusCreated {
		err = fmt.Errorf("POST /v1/messages answered %d", code)
	}
	return err
}

func requestQuiet(method, url, token string, body any) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(method, url, strings.NewReader(string(raw)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
