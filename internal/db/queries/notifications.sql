-- name: GetPreferences :one
SELECT * FROM notification_preferences WHERE user_id = @user_id;

-- name: UpsertPreferences :one
INSERT INTO notification_preferences (user_id, push_enabled, in_app_enabled, email_enabled, sms_enabled, email, phone, notify_when_online, updated_at)
VALUES (@user_id, @push_enabled, @in_app_enabled, @email_enabled, @sms_enabled, sqlc.narg('email'), sqlc.narg('phone'), @notify_when_online, now())
ON CONFLICT (user_id) DO UPDATE SET
    push_enabled = excluded.push_enabled, in_app_enabled = excluded.in_app_enabled,
    email_enabled = excluded.email_enabled, sms_enabled = excluded.sms_enabled,
    email = excluded.email, phone = excluded.phone, notify_when_online = excluded.notify_when_online,
    updated_at = now()
RETURNING *;

-- name: FinishNotification :exec
UPDATE notifications SET status = @status::notification_status, title = sqlc.narg('title'), body = sqlc.narg('body'),
    provider_message_id = sqlc.narg('provider_message_id'), failure_reason = sqlc.narg('failure_reason'),
    attempts = attempts + 1, sent_at = CASE WHEN @status::text = 'sent' THEN now() ELSE sent_at END
WHERE id = @id AND status = 'pending';

-- name: RegisterDevice :one
INSERT INTO device_tokens (id, user_id, platform, token)
VALUES (@id, @user_id, @platform::device_platform, @token)
ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id, platform = excluded.platform,
    active = true, deactivated_at = NULL, last_seen_at = now()
RETURNING id, user_id, platform::text AS platform, active;

-- name: DeactivateDevice :execrows
UPDATE device_tokens SET active = false, deactivated_at = now()
WHERE id = @id AND user_id = @user_id AND active;

-- name: ListActiveDevices :many
SELECT id, platform::text AS platform, token FROM device_tokens
WHERE user_id = @user_id AND active
ORDER BY created_at, id;

-- name: ClaimDelivery :one
-- Creates the (notification, device) delivery, or returns the one a
-- previous attempt created.
WITH ins AS (
    INSERT INTO notification_deliveries (notification_id, device_token_id)
    VALUES (@notification_id, @device_token_id)
    ON CONFLICT (notification_id, device_token_id) DO NOTHING
    RETURNING status::text AS status, provider_message_id
)
SELECT status, provider_message_id FROM ins
UNION ALL
SELECT d.status::text, d.provider_message_id FROM notification_deliveries d
WHERE d.notification_id = @notification_id AND d.device_token_id = @device_token_id
  AND NOT EXISTS (SELECT 1 FROM ins);

-- name: FinishDelivery :exec
UPDATE notification_deliveries SET status = @status::notification_status,
    provider_message_id = sqlc.narg('provider_message_id'), failure_reason = sqlc.narg('failure_reason'),
    sent_at = CASE WHEN @status::text = 'sent' THEN now() ELSE sent_at END
WHERE notification_id = @notification_id AND device_token_id = @device_token_id AND status = 'pending';

-- name: DeactivateDeviceToken :execrows
-- Deactivates a token the push provider called invalid. Only if it is
-- still the same registration (a re-registration after the send keeps it).
UPDATE device_tokens SET active = false, deactivated_at = now()
WHERE id = @id AND token = @token AND active;

-- name: ClaimMessageNotifications :many
-- send-notification's first statement: the message, its recipient's
-- stored preferences (NULL columns when none are stored), and the claim of
-- each channel to notify on: the @channels given when @explicit, else
-- those the preferences enable (@default_* when none are stored). A claim
-- is the channel's (message, user, channel) notification, created pending
-- with the id at the channel's position in @ids, or as an earlier attempt
-- left it. One row per wanted channel, or one row with an empty
-- wanted_channel when there is none; no row when the message does not
-- exist. A claim another transaction is creating at this moment has an
-- empty claim_status. sender_name is the sender's display name (NULL when
-- the sender set none); muted says the user muted the message's
-- conversation until later than now.
WITH pref AS (
    SELECT push_enabled, in_app_enabled, email_enabled, sms_enabled
    FROM notification_preferences WHERE user_id = @user_id::uuid
), input AS (
    SELECT unnest(@channels::text[]) AS channel, unnest(@ids::uuid[]) AS id
), wanted AS (
    SELECT c.channel, c.id FROM input c
    WHERE EXISTS (SELECT 1 FROM messages WHERE id = @message_id::uuid)
      AND (@explicit::bool OR CASE c.channel
            WHEN 'push' THEN coalesce((SELECT push_enabled FROM pref), @default_push::bool)
            WHEN 'in_app' THEN coalesce((SELECT in_app_enabled FROM pref), @default_in_app::bool)
            WHEN 'email' THEN coalesce((SELECT email_enabled FROM pref), @default_email::bool)
            WHEN 'sms' THEN coalesce((SELECT sms_enabled FROM pref), @default_sms::bool)
            ELSE false END)
), ins AS (
    INSERT INTO notifications (id, message_id, user_id, channel, type)
    SELECT w.id, @message_id::uuid, @user_id::uuid, w.channel::notification_channel, @type::text FROM wanted w
    ON CONFLICT (message_id, user_id, channel) DO NOTHING
    RETURNING id, channel::text AS channel, status::text AS status
), claims AS (
    SELECT ins.id, ins.channel, ins.status FROM ins
    UNION ALL
    SELECT n.id, n.channel::text, n.status::text FROM notifications n
    JOIN wanted w ON w.channel = n.channel::text
    WHERE n.message_id = @message_id::uuid AND n.user_id = @user_id::uuid
      AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.channel = n.channel::text)
)
SELECT sqlc.embed(m),
       p.push_enabled, p.in_app_enabled, p.email_enabled, p.sms_enabled, p.email, p.phone, p.notify_when_online,
       coalesce(w.channel, '')::text AS wanted_channel,
       coalesce(c.id, '00000000-0000-0000-0000-000000000000'::uuid)::uuid AS claim_id,
       coalesce(c.status, '')::text AS claim_status,
       sp.display_name AS sender_name,
       coalesce(cp.muted_until > now(), false)::bool AS muted
FROM messages m
LEFT JOIN notification_preferences p ON p.user_id = @user_id::uuid
LEFT JOIN user_profiles sp ON sp.user_id = m.sender_id
LEFT JOIN conversation_participants cp ON cp.conversation_id = m.conversation_id AND cp.user_id = @user_id::uuid
LEFT JOIN wanted w ON true
LEFT JOIN claims c ON c.channel = w.channel
WHERE m.id = @message_id::uuid
ORDER BY w.channel;
