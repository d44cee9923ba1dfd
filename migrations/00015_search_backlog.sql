-- +goose Up
-- New plaintext messages waiting for their search entry. InsertMessage and
-- InsertMessages add the row in the message's own transaction, and the
-- runner's periodic index-pending sweep takes hundreds at a time, writes
-- their entries and deletes the rows in one statement: far less work per
-- message than an index-message job (a river_job row with its indexes,
-- fetched and completed). Edits and deletes still enqueue index-message.
-- No foreign key: a row whose message is gone is simply dropped.
CREATE TABLE search_backlog (
    message_id uuid        PRIMARY KEY,
    queued_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE search_backlog;
