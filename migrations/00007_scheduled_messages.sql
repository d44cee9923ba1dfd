-- +goose Up
CREATE TYPE scheduled_status AS ENUM ('pending', 'released', 'cancelled', 'failed');

-- A message held until send_at. It has no seq and is not in history or
-- resume until released, when the release-scheduled-message job writes the
-- real message (with its seq and jobs) in the same transaction that marks
-- this row released.
CREATE TABLE scheduled_messages (
    id              uuid             PRIMARY KEY,
    conversation_id uuid             NOT NULL,
    sender_id       uuid             NOT NULL,
    recipient_id    uuid             NOT NULL,
    content         text             NOT NULL,
    priority        smallint         NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
    send_at         timestamptz      NOT NULL,
    status          scheduled_status NOT NULL DEFAULT 'pending',
    message_id      uuid,
    failure_reason  text,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    released_at     timestamptz,
    cancelled_at    timestamptz,
    CONSTRAINT scheduled_messages_sender_recipient_check CHECK (sender_id <> recipient_id)
);

CREATE INDEX scheduled_messages_sender_pending_idx ON scheduled_messages (sender_id, send_at) WHERE status = 'pending';

-- +goose Down
DROP TABLE scheduled_messages;
DROP TYPE scheduled_status;
