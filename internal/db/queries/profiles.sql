-- name: GetProfile :one
SELECT user_id, display_name, updated_at FROM user_profiles WHERE user_id = @user_id;

-- name: UpsertProfile :one
INSERT INTO user_profiles (user_id, display_name)
VALUES (@user_id, @display_name)
ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name, updated_at = now()
RETURNING user_id, display_name, updated_at;

-- name: DeleteProfile :execrows
DELETE FROM user_profiles WHERE user_id = @user_id;
