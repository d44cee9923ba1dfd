package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/outbox"
)

// group is a test group: its id and its members' tokens.
type group struct {
	id  string
	tok map[uuid.UUID]string
}

// createGroup has owner create a group with members through node 0.
func (b *bundle) createGroup(t *testing.T, title string, owner uuid.UUID, members ...uuid.UUID) group {
	t.Helper()
	g := group{tok: map[uuid.UUID]string{owner: b.token(t, owner)}}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.String()
		g.tok[m] = b.token(t, m)
	}
	code, res := do(t, http.MethodPost, b.nodes[0].base+"/v1/conversations", g.tok[owner], map[string]any{"title": title, "member_ids": ids})
	require.Equal(t, http.StatusCreated, code, res)
	g.id = res["id"].(string)
	return g
}

func (b *bundle) groupURL(n int, g group, rest string) string {
	return b.nodes[n].base + "/v1/conversations/" + g.id + rest
}

func groupMsg(g group, content string) map[string]any {
	return map[string]any{"conversation_id": g.id, "content": content}
}

// history returns the seqs and frames of a user's history of the group.
func (b *bundle) history(t *testing.T, g group, tok string) []map[string]any {
	t.Helper()
	code, res := do(t, http.MethodGet, b.groupURL(0, g, "/messages?limit=200"), tok, nil)
	require.Equal(t, http.StatusOK, code, res)
	var out []map[string]any
	for _, m := range res["messages"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

func seqsOf(frames []map[string]any) []int {
	out := make([]int, len(frames))
	for i, f := range frames {
		out[i] = int(f["seq"].(float64))
	}
	return out
}

// A group works end to end: created with its members, a message to it
// reaches every member's sockets on both gateways once (and not the
// sender's), over HTTP and the websocket, with no recipient_id; history,
// the conversation list and unread counts show it; acks move each
// member's cursors and the sender sees the counts.
func TestGroupMessagesReachEveryMemberAndCountReceipts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	aliceWS := b.dial(t, 0, b.token(t, alice))
	bobWS := b.dial(t, 1, b.token(t, bob))
	carolWS := b.dial(t, 0, b.token(t, carol))

	g := b.createGroup(t, "care team", alice, bob, carol)
	code, view := do(t, http.MethodGet, b.groupURL(1, g, ""), g.tok[bob], nil)
	require.Equal(t, http.StatusOK, code, view)
	require.Equal(t, "group", view["kind"])
	require.Equal(t, "care team", view["title"])
	require.Equal(t, "member", view["role"])
	require.Len(t, view["members"], 3)

	// The creation is the group's first message, with its event.
	for _, ws := range []*client{bobWS, carolWS} {
		f := ws.expect("message", nil)
		require.EqualValues(t, 1, f["seq"])
		require.Equal(t, "group_created", f["event"].(map[string]any)["type"])
		require.NotContains(t, f, "recipient_id")
	}

	// Over HTTP ...
	code, res := b.post(t, 0, g.tok[alice], groupMsg(g, "standup at nine"))
	require.Equal(t, http.StatusCreated, code, res)
	require.EqualValues(t, 2, res["seq"])
	require.Equal(t, "sent", res["status"])
	first := res["id"].(string)
	for _, ws := range []*client{bobWS, carolWS} {
		f := ws.expect("message", nil)
		require.Equal(t, first, f["id"])
		require.Equal(t, "standup at nine", f["content"])
		require.Equal(t, alice.String(), f["sender_id"])
		require.NotContains(t, f, "recipient_id")
	}
	// ... and over the websocket.
	carolWS.write(map[string]any{"type": "send", "ref": "c1", "conversation_id": g.id, "content": "on my way"})
	sent := carolWS.expect("sent", nil)
	require.EqualValues(t, 3, sent["seq"])
	for _, ws := range []*client{aliceWS, bobWS} {
		require.Equal(t, sent["id"], ws.expect("message", func(f map[string]any) bool { return f["seq"].(float64) == 3 })["id"])
	}
	// The sender's socket gets no copy of its own message, and nobody a
	// second one.
	carolWS.quiet("message", 300*time.Millisecond)
	bobWS.quiet("message", 300*time.Millisecond)

	require.Equal(t, []int{1, 2, 3}, seqsOf(b.history(t, g, g.tok[bob])))

	// Bob has two unread (system messages do not count).
	code, unread := do(t, http.MethodGet, b.nodes[1].base+"/v1/unread", g.tok[bob], nil)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 2, unread["conversations"].(map[string]any)[g.id])
	code, list := do(t, http.MethodGet, b.nodes[1].base+"/v1/conversations", g.tok[bob], nil)
	require.Equal(t, http.StatusOK, code, list)
	convs := list["conversations"].([]any)
	require.Len(t, convs, 1)
	c0 := convs[0].(map[string]any)
	require.Equal(t, g.id, c0["id"])
	require.EqualValues(t, 3, c0["members"])
	require.EqualValues(t, 2, c0["unread"])
	require.EqualValues(t, 3, c0["last_message"].(map[string]any)["seq"])

	// Receipts of Alice's message: counts for her, per member on request.
	bobWS.write(map[string]any{"type": "ack", "message_id": first, "status": "delivered"})
	r := aliceWS.expect("receipt", nil)
	require.Equal(t, first, r["message_id"])
	require.EqualValues(t, 2, r["members"])
	require.EqualValues(t, 1, r["delivered_count"])
	require.EqualValues(t, 0, r["read_count"])
	carolWS.write(map[string]any{"type": "ack", "message_id": first, "status": "read"})
	r = aliceWS.expect("receipt", nil)
	require.EqualValues(t, 2, r["delivered_count"])
	require.EqualValues(t, 1, r["read_count"])
	// A duplicate changes nothing and sends nothing.
	carolWS.write(map[string]any{"type": "ack", "message_id": first, "status": "read"})
	aliceWS.quiet("receipt", 500*time.Millisecond)

	code, rs := do(t, http.MethodGet, b.groupURL(0, g, "/messages/"+first+"/receipts"), g.tok[alice], nil)
	require.Equal(t, http.StatusOK, code, rs)
	require.EqualValues(t, 2, rs["members"])
	require.EqualValues(t, 1, rs["read_count"])
	code, rs = do(t, http.MethodGet, b.groupURL(0, g, "/messages/"+first+"/receipts"), g.tok[bob], nil)
	require.Equal(t, http.StatusForbidden, code, rs)

	// Reading moves Bob's read cursor: Carol's message (seq 3) read means
	// all before it read too.
	bobWS.write(map[string]any{"type": "ack", "message_id": sent["id"], "status": "read"})
	require.Eventually(t, func() bool {
		_, unread := do(t, http.MethodGet, b.nodes[1].base+"/v1/unread", g.tok[bob], nil)
		n, _ := unread["conversations"].(map[string]any)[g.id].(float64)
		return n == 0
	}, 10*time.Second, 50*time.Millisecond)
	require.EqualValues(t, 2, b.count(t, `SELECT count(*) FROM conversation_participants WHERE conversation_id = $1 AND last_read_seq > 0`, g.id))
	require.EqualValues(t, 0, b.count(t, `SELECT count(*) FROM messages WHERE conversation_id = $1 AND recipient_id IS NOT NULL`, g.id),
		"a group message has no recipient row, whatever the group's size")
}

// A message to a group written by a service through the outbox (no fast
// path: the send-message job delivers it) reaches the members too, and so
// does one whose fast path never ran (the deliver-pending sweep).
func TestGroupMessagesFromTheOutboxAndTheSweepReachMembers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	bobWS := b.dial(t, 1, b.token(t, bob))
	g := b.createGroup(t, "ops", alice, bob)
	bobWS.expect("message", nil) // the creation

	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(inserter, outbox.Config{})
	require.NoError(t, err)
	ctx := context.Background()
	res, err := ob.Send(ctx, b.pool, outbox.Message{ConversationID: uuid.MustParse(g.id), SenderID: alice, Content: "from the service"})
	require.NoError(t, err)
	require.Equal(t, []string{"send-message", "send-notification"}, kinds(res.Jobs), "one delivery job and one notification job for the whole group")
	f := bobWS.expect("message", nil)
	require.Equal(t, res.ID.String(), f["id"])

	late, err := ob.Send(ctx, b.pool, outbox.Message{ConversationID: uuid.MustParse(g.id), SenderID: alice, Content: "late", CallerPublishes: true})
	require.NoError(t, err)
	b.sweepPastBackstop(t, late.ID)
	require.Equal(t, late.ID.String(), bobWS.expect("message", nil)["id"])

	// Someone outside the group cannot write to it through the outbox.
	_, err = ob.Send(ctx, b.pool, outbox.Message{ConversationID: uuid.MustParse(g.id), SenderID: uuid.New(), Content: "intruder"})
	require.ErrorIs(t, err, outbox.ErrNotParticipant)
	// Nor can a direct message enter a group, even between members.
	_, err = ob.Send(ctx, b.pool, outbox.Message{ConversationID: uuid.MustParse(g.id), SenderID: alice, RecipientID: bob, Content: "direct"})
	require.ErrorIs(t, err, outbox.ErrNotParticipant)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM messages WHERE conversation_id = $1`, g.id))
}

func kinds(js []outbox.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.Kind
	}
	return out
}

// Visibility follows membership: a removed member (socket on the other
// gateway) gets the message that removes them and nothing after it, live
// or through resume, history or search; they cannot send; added back,
// they see the group again from the message that re-added them only.
func TestRemovedMemberSeesNothingAfterRemoval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	bobWS := b.dial(t, 0, b.token(t, bob))
	carolWS := b.dial(t, 1, b.token(t, carol))
	g := b.createGroup(t, "staff room", alice, bob, carol)
	for _, ws := range []*client{bobWS, carolWS} {
		ws.expect("message", nil)
	}
	// Node 1 publishes first, so it holds the membership before the
	// removal: the message after it must not be served from that.
	code, res := b.post(t, 1, g.tok[alice], groupMsg(g, "before zebra"))
	require.Equal(t, http.StatusCreated, code, res)
	carolWS.expect("message", nil)

	code, ch := do(t, http.MethodDelete, b.groupURL(0, g, "/members/"+carol.String()), g.tok[alice], nil)
	require.Equal(t, http.StatusOK, code, ch)
	require.EqualValues(t, 3, ch["seq"])
	require.Equal(t, "member_removed", ch["event"].(map[string]any)["type"])
	// Carol is told, on her gateway.
	removal := carolWS.expect("message", nil)
	require.EqualValues(t, 3, removal["seq"])

	code, res = b.post(t, 1, g.tok[alice], groupMsg(g, "after zebra"))
	require.Equal(t, http.StatusCreated, code, res)
	after := res["id"].(string)
	require.Equal(t, after, bobWS.expect("message", func(f map[string]any) bool { return f["seq"].(float64) == 4 })["id"])
	carolWS.quiet("message", 500*time.Millisecond)

	// She cannot write to it, over HTTP or the websocket.
	code, res = b.post(t, 1, g.tok[carol], groupMsg(g, "let me back"))
	require.Equal(t, http.StatusForbidden, code, res)
	require.Equal(t, "not_participant", res["error"].(map[string]any)["code"])
	carolWS.write(map[string]any{"type": "send", "ref": "x", "conversation_id": g.id, "content": "hello?"})
	require.Equal(t, "not_participant", carolWS.expect("error", nil)["code"])

	// Her history and resume stop at her removal; Bob's go on.
	require.Equal(t, []int{1, 2, 3}, seqsOf(b.history(t, g, g.tok[carol])))
	require.Equal(t, []int{1, 2, 3, 4}, seqsOf(b.history(t, g, g.tok[bob])))
	carolWS.write(map[string]any{"type": "resume", "after": map[string]int64{}})
	require.EqualValues(t, 3, carolWS.expect("resumed", nil)["messages"])
	code, view := do(t, http.MethodGet, b.groupURL(0, g, ""), g.tok[carol], nil)
	require.Equal(t, http.StatusOK, code, view)
	require.EqualValues(t, 3, view["left_seq"])
	require.NotContains(t, view, "members", "a former member does not see who is in the group now")

	// Search: Bob finds both, Carol only what she could see.
	search := func(tok string) int {
		_, res := do(t, http.MethodGet, b.nodes[0].base+"/v1/search?q="+url.QueryEscape("zebra"), tok, nil)
		return len(res["results"].([]any))
	}
	require.Eventually(t, func() bool { return search(g.tok[bob]) == 2 }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, search(g.tok[carol]))

	// Added back, she sees the group from there on, not what she missed.
	code, ch = do(t, http.MethodPost, b.groupURL(0, g, "/members"), g.tok[alice], map[string]any{"member_ids": []string{carol.String()}})
	require.Equal(t, http.StatusCreated, code, ch)
	require.EqualValues(t, 5, ch["seq"])
	require.EqualValues(t, 5, carolWS.expect("message", nil)["seq"])
	require.Equal(t, []int{5}, seqsOf(b.history(t, g, g.tok[carol])))
	code, res = b.post(t, 0, g.tok[carol], groupMsg(g, "back again"))
	require.Equal(t, http.StatusCreated, code, res)
	require.EqualValues(t, 6, bobWS.expect("message", func(f map[string]any) bool { return f["seq"].(float64) == 6 })["seq"])
}

// Roles: owners change roles and remove anyone, admins add members,
// retitle and remove members but not owners, members only leave; the
// last owner cannot leave until another member is an owner.
func TestGroupRolesGovernChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, carol, dave := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	g := b.createGroup(t, "parents", alice, bob, carol)
	g.tok[dave] = b.token(t, dave)
	errCode := func(res map[string]any) string { return res["error"].(map[string]any)["code"].(string) }
	add := func(by uuid.UUID, who uuid.UUID) (int, map[string]any) {
		return do(t, http.MethodPost, b.groupURL(0, g, "/members"), g.tok[by], map[string]any{"member_ids": []string{who.String()}})
	}

	code, res := add(bob, dave)
	require.Equal(t, http.StatusForbidden, code, res)
	require.Equal(t, "forbidden", errCode(res))

	code, res = do(t, http.MethodPut, b.groupURL(0, g, "/members/"+bob.String()), g.tok[alice], map[string]any{"role": "admin"})
	require.Equal(t, http.StatusOK, code, res)
	require.Equal(t, "role_changed", res["event"].(map[string]any)["type"])
	code, res = add(bob, dave)
	require.Equal(t, http.StatusCreated, code, res)
	code, res = do(t, http.MethodPatch, b.groupURL(0, g, ""), g.tok[bob], map[string]any{"title": "class 3 parents"})
	require.Equal(t, http.StatusOK, code, res)

	// An admin removes members, not owners; a member removes nobody.
	code, res = do(t, http.MethodDelete, b.groupURL(0, g, "/members/"+alice.String()), g.tok[bob], nil)
	require.Equal(t, http.StatusForbidden, code, res)
	code, res = do(t, http.MethodDelete, b.groupURL(0, g, "/members/"+bob.String()), g.tok[carol], nil)
	require.Equal(t, http.StatusForbidden, code, res)
	code, res = do(t, http.MethodDelete, b.groupURL(0, g, "/members/"+dave.String()), g.tok[bob], nil)
	require.Equal(t, http.StatusOK, code, res)

	// The last owner can neither leave nor step down ...
	code, res = do(t, http.MethodDelete, b.groupURL(0, g, "/members/"+alice.String()), g.tok[alice], nil)
	require.Equal(t, http.StatusConflict, code, res)
	require.Equal(t, "last_owner", errCode(res))
	code, res = do(t, http.MethodPut, b.groupURL(0, g, "/members/"+alice.String()), g.tok[alice], map[string]any{"role": "member"})
	require.Equal(t, http.StatusConflict, code, res)
	require.Equal(t, "role", res["error"].(map[string]any)["field"])
	// ... until another member is an owner. Any member may leave.
	code, res = do(t, http.MethodPut, b.groupURL(0, g, "/members/"+carol.String()), g.tok[alice], map[string]any{"role": "owner"})
	require.Equal(t, http.StatusOK, code, res)
	code, res = do(t, http.MethodDelete, b.groupURL(0, g, "/members/"+alice.String()), g.tok[alice], nil)
	require.Equal(t, http.StatusOK, code, res)
	require.Equal(t, "member_left", res["event"].(map[string]any)["type"])

	code, view := do(t, http.MethodGet, b.groupURL(0, g, ""), g.tok[carol], nil)
	require.Equal(t, http.StatusOK, code, view)
	require.Equal(t, "class 3 parents", view["title"])
	roles := map[string]string{}
	for _, m := range view["members"].([]any) {
		roles[m.(map[string]any)["user_id"].(string)] = m.(map[string]any)["role"].(string)
	}
	require.Equal(t, map[string]string{bob.String(): "admin", carol.String(): "owner"}, roles)
	// Every change is in the history, in order.
	var events []string
	for _, f := range b.history(t, g, g.tok[carol]) {
		events = append(events, f["event"].(map[string]any)["type"].(string))
	}
	require.Equal(t, []string{"group_created", "role_changed", "members_added", "title_changed", "member_removed", "role_changed", "member_left"}, events)

	// When the last member leaves, the group is deleted, for cleanup to
	// remove.
	for _, u := range []uuid.UUID{bob, carol} {
		code, res = do(t, http.MethodDelete, b.groupURL(0, g, "/members/"+u.String()), g.tok[u], nil)
		require.Equal(t, http.StatusOK, code, res)
	}
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM conversations WHERE id = $1 AND deleted_at IS NOT NULL`, g.id))
}

// A group can be encrypted at rest like a direct conversation: the stored
// message is ciphertext, and each member's gateway opens it for them, live
// and in history.
func TestEncryptedGroupMessagesOpenForMembers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	bobWS := b.dial(t, 1, b.token(t, bob))
	g := b.createGroup(t, "vault", alice, bob)
	bobWS.expect("message", nil)
	code, res := b.post(t, 0, g.tok[alice], map[string]any{"conversation_id": g.id, "content": "the combination is 1234", "requires_encryption": true})
	require.Equal(t, http.StatusCreated, code, res)
	f := bobWS.expect("message", nil)
	require.Equal(t, true, f["encrypted"])
	require.Equal(t, "the combination is 1234", f["content"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages WHERE id = $1 AND content IS NULL AND ciphertext IS NOT NULL`, res["id"]))
	h := b.history(t, g, g.tok[bob])
	require.Equal(t, "the combination is 1234", h[len(h)-1]["content"])
}

// Bad input to the group routes gets a clear 4xx naming the field and
// writes nothing.
func TestGroupBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, stranger := uuid.New(), uuid.New(), uuid.New()
	g := b.createGroup(t, "team", alice, bob)
	aliceTok, strangerTok := g.tok[alice], b.token(t, stranger)
	state := func() [3]int {
		return [3]int{
			b.count(t, `SELECT count(*) FROM conversations`),
			b.count(t, `SELECT count(*) FROM conversation_participants`),
			b.count(t, `SELECT count(*) FROM messages`),
		}
	}
	before := state()
	tooMany := make([]string, 1000)
	for i := range tooMany {
		tooMany[i] = uuid.NewString()
	}
	create := b.nodes[0].base + "/v1/conversations"
	members := b.groupURL(0, g, "/members")
	cases := []struct {
		name, method, url, tok string
		body                   any
		status                 int
		code, field            string
	}{
		{"member not a uuid", http.MethodPost, create, aliceTok, map[string]any{"title": "t", "member_ids": []string{"bob"}}, 400, "invalid_field", "member_ids[0]"},
		{"member twice", http.MethodPost, create, aliceTok, map[string]any{"title": "t", "member_ids": []string{bob.String(), bob.String()}}, 400, "invalid_field", "member_ids[1]"},
		{"yourself", http.MethodPost, create, aliceTok, map[string]any{"title": "t", "member_ids": []string{alice.String()}}, 400, "invalid_field", "member_ids[0]"},
		{"over the limit", http.MethodPost, create, aliceTok, map[string]any{"title": "t", "member_ids": tooMany}, 400, "invalid_field", "member_ids"},
		{"no members", http.MethodPost, create, aliceTok, map[string]any{"title": "t", "member_ids": []string{}}, 400, "invalid_field", "member_ids"},
		{"blank title", http.MethodPost, create, aliceTok, map[string]any{"title": " ", "member_ids": []string{bob.String()}}, 400, "invalid_field", "title"},
		{"title too long", http.MethodPost, create, aliceTok, map[string]any{"title": strings.Repeat("é", 201), "member_ids": []string{bob.String()}}, 400, "invalid_field", "title"},
		{"unknown field", http.MethodPost, create, aliceTok, map[string]any{"title": "t", "member_ids": []string{bob.String()}, "owner": "me"}, 400, "invalid_field", "owner"},
		{"adding a member twice", http.MethodPost, members, aliceTok, map[string]any{"member_ids": []string{bob.String()}}, 409, "already_member", "member_ids[0]"},
		{"adding yourself", http.MethodPost, members, aliceTok, map[string]any{"member_ids": []string{alice.String()}}, 400, "invalid_field", "member_ids[0]"},
		{"a non-member adding", http.MethodPost, members, strangerTok, map[string]any{"member_ids": []string{uuid.NewString()}}, 403, "not_participant", "id"},
		{"a non-member retitling", http.MethodPatch, b.groupURL(0, g, ""), strangerTok, map[string]any{"title": "mine"}, 403, "not_participant", "id"},
		{"removing a non-member", http.MethodDelete, b.groupURL(0, g, "/members/"+stranger.String()), aliceTok, nil, 404, "not_found", "user_id"},
		{"removing the last owner", http.MethodDelete, b.groupURL(0, g, "/members/"+alice.String()), aliceTok, nil, 409, "last_owner", "user_id"},
		{"unknown role", http.MethodPut, b.groupURL(0, g, "/members/"+bob.String()), aliceTok, map[string]any{"role": "king"}, 400, "invalid_field", "role"},
		{"no such group", http.MethodPost, b.nodes[0].base + "/v1/conversations/" + uuid.NewString() + "/members", aliceTok, map[string]any{"member_ids": []string{uuid.NewString()}}, 404, "not_found", "id"},
		{"a stranger reading", http.MethodGet, b.groupURL(0, g, ""), strangerTok, nil, 404, "not_found", "id"},
		{"a group message with recipient_id", http.MethodPost, b.nodes[0].base + "/v1/messages", aliceTok, map[string]any{"conversation_id": g.id, "recipient_id": bob.String(), "content": "hi"}, 403, "not_participant", "conversation_id"},
		{"a stranger's message", http.MethodPost, b.nodes[0].base + "/v1/messages", strangerTok, groupMsg(g, "hi"), 403, "not_participant", "conversation_id"},
		{"scheduling to a group", http.MethodPost, b.nodes[0].base + "/v1/messages", aliceTok, map[string]any{"conversation_id": g.id, "content": "later", "delay_ms": 60000}, 400, "invalid_field", "recipient_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := do(t, tc.method, tc.url, tc.tok, tc.body)
			require.Equal(t, tc.status, code, res)
			e := res["error"].(map[string]any)
			require.Equal(t, tc.code, e["code"], e)
			require.Equal(t, tc.field, e["field"], e)
		})
	}
	require.Equal(t, before, state(), "nothing was written")
}

// A group message gets one notification job, which notifies every member
// but the sender on their own channels, once each; a member who muted the
// group gets in-app but no push.
func TestGroupNotificationsReachMembersAndRespectMute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, carol, dave := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	bobWS := b.dial(t, 0, b.token(t, bob))
	carolWS := b.dial(t, 1, b.token(t, carol))
	g := b.createGroup(t, "night shift", alice, bob, carol, dave)

	code, res := do(t, http.MethodPut, b.groupURL(1, g, "/settings"), g.tok[carol],
		map[string]any{"muted_until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusOK, code, res)
	code, res = do(t, http.MethodPut, b.groupURL(1, g, "/settings"), g.tok[carol], map[string]any{"muted_until": "tomorrow"})
	require.Equal(t, http.StatusBadRequest, code, res)
	require.Equal(t, "muted_until", res["error"].(map[string]any)["field"])

	code, res = b.post(t, 0, g.tok[alice], groupMsg(g, "who has the keys?"))
	require.Equal(t, http.StatusCreated, code, res)
	id := res["id"].(string)
	for _, ws := range []*client{bobWS, carolWS} {
		require.Equal(t, id, ws.expect("notification", nil)["message_id"], "in-app reaches members, muted or not")
	}
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-notification' AND args->>'message_id' = $1`, id))
	type row struct{ user, channel, status, reason string }
	var got []row
	require.Eventually(t, func() bool {
		rows, err := b.pool.Query(context.Background(), `SELECT user_id::text, channel::text, status::text, coalesce(failure_reason, '')
			FROM notifications WHERE message_id = $1 AND status <> 'pending' ORDER BY user_id, channel`, uuid.MustParse(id))
		require.NoError(t, err)
		got = got[:0]
		for rows.Next() {
			var r row
			require.NoError(t, rows.Scan(&r.user, &r.channel, &r.status, &r.reason))
			got = append(got, r)
		}
		return len(got) == 6
	}, 20*time.Second, 50*time.Millisecond, "two channels for each of three members: %v", got)
	by := map[string]row{}
	for _, r := range got {
		by[r.user+"/"+r.channel] = r
	}
	require.NotContains(t, by, alice.String()+"/push", "the sender is not notified")
	require.Equal(t, "sent", by[bob.String()+"/in_app"].status)
	require.Equal(t, "the recipient is online", by[bob.String()+"/push"].reason)
	require.Equal(t, "sent", by[carol.String()+"/in_app"].status)
	require.Equal(t, "suppressed", by[carol.String()+"/push"].status)
	require.Equal(t, "the recipient muted the conversation", by[carol.String()+"/push"].reason)
	require.Equal(t, "cancelled", by[dave.String()+"/push"].status, "dave is offline: push is tried (no provider in this test)")
}

// A group message's attachment is readable by the members whose window
// covers the message, and by nobody else; a member who joined after it
// cannot read it.
func TestGroupAttachmentsFollowMembership(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, carol, stranger := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	g := b.createGroup(t, "files", alice, bob)
	url := b.nodes[0].base + "/v1/attachments"
	code, res := upload(t, url, g.tok[alice], "text/plain; charset=utf-8", []byte("minutes"))
	require.Equal(t, http.StatusCreated, code, res)
	att := res["id"].(string)
	code, res = b.post(t, 0, g.tok[alice], map[string]any{"conversation_id": g.id, "content": "see attached", "attachment_ids": []string{att}})
	require.Equal(t, http.StatusCreated, code, res)

	code, body := fetch(t, url+"/"+att, g.tok[bob])
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "minutes", body)
	code, _ = do(t, http.MethodGet, url+"/"+att, b.token(t, stranger), nil)
	require.Equal(t, http.StatusNotFound, code, "not a member")
	code, res = do(t, http.MethodPost, b.groupURL(0, g, "/members"), g.tok[alice], map[string]any{"member_ids": []string{carol.String()}})
	require.Equal(t, http.StatusCreated, code, res)
	code, _ = do(t, http.MethodGet, url+"/"+att, b.token(t, carol), nil)
	require.Equal(t, http.StatusNotFound, code, "sent before she joined")
}
