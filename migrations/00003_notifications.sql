-- +goose Up
CREATE TYPE notification_channel AS ENUM ('push', 'email', 'sms', 'in_app');
CREATE TYPE notification_status AS ENUM ('pending', 'sent', 'failed', 'cancelled', 'suppressed');

-- One row per (message, recipient, channel): the unique key is what makes a
-- retried send-notification job a no-op for a channel already sent.
CREATE TABLE notifications (
    id                  uuid                 PRIMARY KEY,
    message_id          uuid                 REFERENCES messages (id) ON DELETE CASCADE,
    user_id             uuid                 NOT NULL,
    channel             notification_channel NOT NULL,
    type                text                 NOT NULL DEFAULT 'new_message',
    status              notification_status  NOT NULL DEFAULT 'pending',
    title               text,
    body                text,
    provider_message_id text,
    failure_reason      text,
    attempts            integer              NOT NULL DEFAULT 0,
    created_at          timestamptz          NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    read_at             timestamptz,
    CONSTRAINT notifications_message_user_channel_key UNIQUE (message_id, user_id, channel)
);

CREATE INDEX notifications_user_created_idx ON notifications (user_id, created_at DESC);

CREATE TYPE device_platform AS ENUM ('ios', 'android', 'web');

CREATE TABLE device_tokens (
    id             uuid            PRIMARY KEY,
    user_id        uuid            NOT NULL,
    platform       device_platform NOT NULL,
    token          text            NOT NULL,
    active         boolean         NOT NULL DEFAULT true,
    created_at     timestamptz     NOT NULL DEFAULT now(),
    last_seen_at   timestamptz     NOT NULL DEFAULT now(),
    deactivated_at timestamptz,
    CONSTRAINT device_tokens_token_key UNIQUE (token)
);

CREATE INDEX device_tokens_user_active_idx ON device_tokens (user_id) WHERE active;

-- Absent row: the defaults (push and in_app on, email and sms off).
CREATE TABLE notification_preferences (
    user_id        uuid        PRIMARY KEY,
    push_enabled   boolean     NOT NULL DEFAULT true,
    in_app_enabled boolean     NOT NULL DEFAULT true,
    email_enabled  boolean     NOT NULL DEFAULT false,
    sms_enabled    boolean     NOT NULL DEFAULT false,
    email          text,
    phone          text,
    -- Deliver push/email/sms even while the user is online.
    notify_when_online boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE notification_preferences;
DROP TABLE device_tokens;
DROP TYPE device_platform;
DROP TABLE notifications;
DROP TYPE notification_status;
DROP TYPE notification_channel;
