-- name: CreateGroup :one
-- A new group whose first message (seq 1) is its creation.
INSERT INTO conversations (id, kind, title, last_seq, membership_version)
VALUES (@id, 'group', @title, 1, 1)
RETURNING created_at;

-- name: LockGroup :one
-- Takes the group's next seq, for the system message of a change, under
-- its row lock (held until commit: senders and other changes queue
-- behind it), and bumps its membership version when @membership says the
-- change touches members or roles. No row for an unknown or deleted group,
-- or for a direct conversation.
UPDATE conversations SET
    last_seq = last_seq + 1,
    membership_version = membership_version + CASE WHEN @membership::bool THEN 1 ELSE 0 END
WHERE id = @id AND kind = 'group' AND deleted_at IS NULL
RETURNING last_seq, membership_version, title;

-- name: CurrentMembers :many
-- The group's current members with their roles, in user id order.
SELECT user_id, role, joined_seq FROM conversation_participants
WHERE conversation_id = @conversation_id AND left_seq IS NULL
ORDER BY user_id;

-- name: UpsertMembers :execrows
-- Adds users as members from @joined_seq on, each with its role; a former
-- member comes back with a fresh window and cursors (what they saw
-- before is not shown again). Current members are left as they are.
INSERT INTO conversation_participants AS p (conversation_id, user_id, role, joined_seq)
SELECT @conversation_id::uuid, unnest(@user_ids::uuid[]), unnest(@roles::text[]), @joined_seq::bigint
ON CONFLICT (conversation_id, user_id) DO UPDATE SET
    role = excluded.role, joined_seq = excluded.joined_seq, left_seq = NULL,
    last_delivered_seq = 0, last_read_seq = 0, hidden_through_seq = 0, deleted_at = NULL
WHERE p.left_seq IS NOT NULL;

-- name: EndMembership :execrows
UPDATE conversation_participants SET left_seq = @left_seq
WHERE conversation_id = @conversation_id AND user_id = @user_id AND left_seq IS NULL;

-- name: SetMemberRole :execrows
UPDATE conversation_participants SET role = @role
WHERE conversation_id = @conversation_id AND user_id = @user_id AND left_seq IS NULL;

-- name: SetGroupTitle :exec
UPDATE conversations SET title = @title WHERE id = @id;

-- name: InsertSystemMessage :one
-- A membership or title change as a message of the group: no body, no
-- recipient, the event instead.
INSERT INTO messages (id, conversation_id, sender_id, seq, event)
VALUES (@id, @conversation_id, @sender_id, @seq, @event)
RETURNING created_at;

-- name: GetGroup :one
-- The group with the caller's own membership row (no row when the caller
-- never was a member).
SELECT c.id, c.title, c.created_at, c.last_seq, c.membership_version,
       p.role, p.joined_seq, p.left_seq
FROM conversations c
JOIN conversation_participants p ON p.conversation_id = c.id AND p.user_id = @user_id
WHERE c.id = @id AND c.kind = 'group' AND c.deleted_at IS NULL;

-- name: GroupSpans :many
-- Every membership window of the groups listed, with each group's
-- membership version, so the audience of any message is a function of its
-- seq.
SELECT p.conversation_id, p.user_id, p.joined_seq, p.left_seq, c.membership_version
FROM conversations c
JOIN conversation_participants p ON p.conversation_id = c.id
WHERE c.id = ANY(@conversation_ids::uuid[]) AND c.kind = 'group';

-- name: ListConversations :many
-- The caller's conversations (direct ones and the groups they are in),
-- newest activity first, from the (@before_seq_at, @before_id) position
-- on, each with its last message visible to the caller and the caller's
-- unread count.
WITH mine AS (
    SELECT c.id, c.kind, c.title, c.last_seq, p.hidden_through_seq, p.joined_seq, p.left_seq, p.last_read_seq,
           least(c.last_seq, coalesce(p.left_seq, c.last_seq)) AS top_seq
    FROM conversation_participants p
    JOIN conversations c ON c.id = p.conversation_id
    WHERE p.user_id = @user_id AND p.left_seq IS NULL AND p.deleted_at IS NULL AND c.deleted_at IS NULL
)
SELECT mine.id, mine.kind, mine.title,
       (SELECT count(*) FROM conversation_participants q
        WHERE q.conversation_id = mine.id AND q.left_seq IS NULL)::bigint AS members,
       last.id AS last_id, last.seq AS last_seq, last.sender_id AS last_sender_id, last.created_at AS last_at,
       (last.content IS NULL)::bool AS last_sealed, last.event AS last_event,
       (SELECT count(*) FROM messages u
        WHERE u.conversation_id = mine.id AND u.seq > greatest(mine.hidden_through_seq, mine.last_read_seq, mine.joined_seq - 1)
          AND u.sender_id <> @user_id AND u.event IS NULL AND u.deleted_at IS NULL
          AND (mine.kind = 'group' OR (u.recipient_id = @user_id AND u.read_at IS NULL)))::bigint AS unread
FROM mine
JOIN LATERAL (
    SELECT m.id, m.seq, m.sender_id, m.created_at, m.content, m.event FROM messages m
    WHERE m.conversation_id = mine.id AND m.seq <= mine.top_seq AND m.seq > mine.hidden_through_seq AND m.seq >= mine.joined_seq
    ORDER BY m.seq DESC LIMIT 1
) last ON true
WHERE (last.created_at, mine.id) < (@before_at::timestamptz, @before_id::uuid)
ORDER BY last.created_at DESC, mine.id DESC
LIMIT @max_rows;

-- name: MemberVisibility :one
-- The caller's window on a conversation: what they hid by deleting it,
-- and the seq range of their membership (joined_seq 0 and no left_seq in
-- direct conversations). No row when they never were a participant.
SELECT p.hidden_through_seq, p.joined_seq, p.left_seq, c.kind
FROM conversation_participants p
JOIN conversations c ON c.id = p.conversation_id
WHERE p.conversation_id = @conversation_id AND p.user_id = @user_id;

-- name: GroupMessageForMember :one
-- A group message the member may see (within their window), with its
-- sender.
SELECT m.seq, m.sender_id, m.conversation_id FROM messages m
JOIN conversation_participants p ON p.conversation_id = m.conversation_id AND p.user_id = @user_id
WHERE m.id = @id AND m.recipient_id IS NULL
  AND m.seq >= p.joined_seq AND (p.left_seq IS NULL OR m.seq <= p.left_seq);

-- name: AdvanceMemberCursor :one
-- Moves a member's delivered cursor (and read cursor, for "read") forward
-- to @seq, never back; returns the cursors before and after.
WITH old AS (
    SELECT last_delivered_seq, last_read_seq FROM conversation_participants
    WHERE conversation_id = @conversation_id AND user_id = @user_id
    FOR UPDATE
)
UPDATE conversation_participants p SET
    last_delivered_seq = greatest(p.last_delivered_seq, @seq::bigint),
    last_read_seq = CASE WHEN @read::bool THEN greatest(p.last_read_seq, @seq::bigint) ELSE p.last_read_seq END
FROM old
WHERE p.conversation_id = @conversation_id AND p.user_id = @user_id
RETURNING old.last_delivered_seq AS old_delivered, old.last_read_seq AS old_read,
          p.last_delivered_seq AS new_delivered, p.last_read_seq AS new_read;

-- name: GroupReceiptCounts :one
-- Of the members who could see message @seq, apart from its sender: how
-- many there are, how many have it delivered and how many read.
SELECT count(*)::bigint AS members,
       count(*) FILTER (WHERE last_delivered_seq >= @seq::bigint)::bigint AS delivered,
       count(*) FILTER (WHERE last_read_seq >= @seq::bigint)::bigint AS read
FROM conversation_participants
WHERE conversation_id = @conversation_id AND user_id <> @sender_id
  AND joined_seq <= @seq::bigint AND (left_seq IS NULL OR left_seq >= @seq::bigint);

-- name: GroupReceipts :many
-- Per member (apart from the sender) of those who could see message @seq:
-- delivered and read.
SELECT user_id, (last_delivered_seq >= @seq::bigint) AS delivered, (last_read_seq >= @seq::bigint) AS read
FROM conversation_participants
WHERE conversation_id = @conversation_id AND user_id <> @sender_id
  AND joined_seq <= @seq::bigint AND (left_seq IS NULL OR left_seq >= @seq::bigint)
ORDER BY user_id;

-- name: GroupNotificationAudience :many
-- A page of the members to notify of group message @seq from @sender_id:
-- those whose window covers it, apart from the sender, after @after_user
-- in user id order.
SELECT user_id FROM conversation_participants
WHERE conversation_id = @conversation_id AND user_id <> @sender_id
  AND joined_seq <= @seq::bigint AND (left_seq IS NULL OR left_seq >= @seq::bigint)
  AND user_id > @after_user::uuid
ORDER BY user_id
LIMIT @max_rows;

-- name: SetMuted :execrows
-- Mutes (or, with NULL, unmutes) a conversation for a current participant.
UPDATE conversation_participants SET muted_until = sqlc.narg('muted_until')::timestamptz
WHERE conversation_id = @conversation_id AND user_id = @user_id AND left_seq IS NULL;

-- name: MarkGroupDeleted :exec
-- Marks a group every member left deleted, for cleanup to remove.
UPDATE conversations SET deleted_at = coalesce(deleted_at, now()) WHERE id = @id AND kind = 'group';
