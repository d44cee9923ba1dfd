-- +goose Up
-- What the chat knows about a user beyond the id its tokens carry: the
-- display name the user set (PUT /v1/me/profile), which notifications show
-- as the sender. Users themselves live in the identity provider, so a
-- user without a row simply has no name.
CREATE TABLE user_profiles (
    user_id      uuid        PRIMARY KEY,
    display_name text        NOT NULL
        CONSTRAINT user_profiles_display_name_check CHECK (char_length(display_name) BETWEEN 1 AND 64),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE user_profiles;
