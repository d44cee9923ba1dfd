-- +goose Up
-- One row per (push notification, device token): a push notification goes
-- to every active device of its recipient, and a retry after a transient
-- failure on one device must not push again to a device already sent.
CREATE TABLE notification_deliveries (
    notification_id     uuid                NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    device_token_id     uuid                NOT NULL REFERENCES device_tokens (id) ON DELETE CASCADE,
    status              notification_status NOT NULL DEFAULT 'pending',
    provider_message_id text,
    failure_reason      text,
    created_at          timestamptz         NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    PRIMARY KEY (notification_id, device_token_id)
);

CREATE INDEX notification_deliveries_device_idx ON notification_deliveries (device_token_id);

-- +goose Down
DROP TABLE notification_deliveries;
