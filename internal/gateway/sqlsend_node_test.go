package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

// TestNodeTransactionalSendExample runs clients/js/examples/transactional-send.mjs
// (node-postgres) against a runner and gateways: the message it commits
// with its own write reaches the recipient's socket, the one it rolls back
// is stored nowhere, and a refusal carries the API's code and field. It
// needs node and clients/js's node_modules (`make node-deps`) and says so
// when it skips.
func TestNodeTransactionalSendExample(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../clients/js")
	require.NoError(t, err)
	node, err := exec.LookPath("node")
	switch {
	case err != nil:
		t.Skip("node example skipped: node is not installed (make node-deps installs Debian's nodejs)")
	case fileMissing(filepath.Join(dir, "node_modules", "pg")):
		t.Skip("node example skipped: run `make node-deps` to install clients/js's dev dependencies")
	}

	b := setup(t)
	clinic, patient := uuid.New(), uuid.New()
	ws := b.dial(t, 1, b.token(t, patient))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "examples/transactional-send.mjs", clinic.String(), patient.String())
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "DATABASE_URL="+b.dbURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, stderr.String())

	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var step map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &step), "%s", sc.Text())
		steps[step["step"].(string)] = step
	}
	require.Len(t, steps, 4, "%s", out)

	committed := steps["committed"]
	id := committed["message_id"].(string)
	f := ws.expect("message", func(f map[string]any) bool { return f["id"] == id })
	require.Equal(t, clinic.String(), f["sender_id"])
	require.Equal(t, gateway.DirectConversationID(clinic, patient).String(), f["conversation_id"])
	require.EqualValues(t, 1, f["seq"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM example_appointments WHERE id = $1`, committed["appointment_id"]))
	require.NotEqual(t, "pending", steps["delivered"]["status"])

	rolled := steps["rolled_back"]
	require.EqualValues(t, 0, rolled["appointments"])
	require.EqualValues(t, 0, rolled["messages"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages`), "only the committed message is stored")
	require.Equal(t, 1, b.count(t, `SELECT last_seq::int FROM conversations`), "the rolled-back send took no seq")

	refused := steps["refused"]
	require.Equal(t, "MR400", refused["sqlstate"])
	require.Equal(t, "priority", refused["field"])
	require.Contains(t, refused["message"], "invalid_field: priority")
}

func fileMissing(path string) bool {
	_, err := os.Stat(path)
	return err != nil
}
