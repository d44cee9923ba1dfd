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

-- name: GetMessageWithPreferences :one
-- A message and its recipient's notification preferences (NULL columns
-- when the user has none stored) in one round trip, for send-notification.
SELECT sqlc.embed(m),
       p.push_enabled, p.in_app_enabled, p.email_enabled, p.sms_enabled, p.email, p.phone, p.notify_when_online
FROM messages m
LEFT JOIN notification_preferences p ON p.user_id = @user_id
WHERE m.id = @id;

-- name: ClaimNotifications :many
-- Each channel's (message, user, channel) notification, created pending
-- (with the id given at the same position) or as an earlier attempt left
-- it: one row per channel, whatever the retries. A channel whose row another
-- transaction is creating at this moment is missing from the result.
WITH input AS (
    SELECT unnest(@ids::uuid[]) AS id, unnest(@channels::text[])::notification_channel AS channel
), ins AS (
    INSERT INTO notifications (id, message_id, user_id, channel, type)
    SELECT i.id, @message_id, @user_id, i.channel, @type FROM input i
    ON CONFLICT (message_id, user_id, channel) DO NOTHING
    RETURNING id, channel::text AS channel, status::text AS status
)
SELECT ins.id, ins.channel, ins.status FROM ins
UNION ALL
SELECT n.id, n.channel::text, n.status::text FROM notifications n
JOIN input i ON i.channel = n.channel
WHERE n.message_id = @message_id AND n.user_id = @user_id
  AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.channel = n.channel::text);
