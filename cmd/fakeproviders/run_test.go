package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/boot"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/notify"
)

// syncBuffer is a goroutine-safe output buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEnvFileConfiguresTheRunnerAgainstTheFakes starts the fakes, reads
// the environment they write through the runner's own config reader and
// wiring, and
// sends one notification on each channel.
func TestEnvFileConfiguresTheRunnerAgainstTheFakes(t *testing.T) {
	t.Parallel()
	envFile := filepath.Join(t.TempDir(), "fake.env")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-smtp", "127.0.0.1:0", "-push", "127.0.0.1:0", "-sms", "127.0.0.1:0", "-env-file", envFile}, out)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "runner environment") }, 10*time.Second, 20*time.Millisecond)

	env := readEnv(t, envFile)
	r := config.NewReader(func(k string) string { return env[k] })
	p := boot.NotifyProviders(r, r.Runner().Notify)
	require.NoError(t, r.Err())
	require.NotNil(t, p.Email)
	require.NotNil(t, p.Push)
	require.NotNil(t, p.SMS)

	ctx2 := context.Background()
	_, err := p.Email.SendEmail(ctx2, notify.Email{To: "bob@example.org", Subject: "Hello Bob", Text: "t", HTML: "<p>h</p>", IdempotencyKey: "k1"})
	require.NoError(t, err)
	_, err = p.Push.Push(ctx2, notify.PushMessage{Token: "device-token-1", Title: "Push title", Body: "b"})
	require.NoError(t, err)
	_, err = p.SMS.SendSMS(ctx2, notify.SMS{To: "+14155550123", Body: "sms body"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s := out.String()
		return strings.Contains(s, "[email] to bob@example.org (tls=true): Hello Bob") &&
			strings.Contains(s, "[push] token device-token…: Push title") && strings.Contains(s, "[sms] to +14155550123: sms body")
	}, 10*time.Second, 20*time.Millisecond, out.String())
}

func TestFakesListenOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"-smtp", "0.0.0.0:0", "-env-file", filepath.Join(t.TempDir(), "e")}, &syncBuffer{})
	require.ErrorContains(t, err, "loopback only")
}

// readEnv parses the `export K=V ...` lines the command writes.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "export ")
		for len(line) > 0 {
			k, rest, ok := strings.Cut(line, "=")
			require.True(t, ok, line)
			var v string
			if strings.HasPrefix(rest, "'") {
				end := strings.Index(rest[1:], "'")
				v, line = rest[1:1+end], strings.TrimSpace(rest[2+end:])
			} else {
				v, line, _ = strings.Cut(rest, " ")
			}
			env[k] = v
		}
	}
	_, err = strconv.Atoi(env["SMTP_PORT"])
	require.NoError(t, err)
	return env
}
