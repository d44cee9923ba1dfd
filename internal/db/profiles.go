package db

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// Profile is what the chat knows about a user beyond the id: the display
// name the user set.
type Profile struct {
	UserID      uuid.UUID
	DisplayName string
	UpdatedAt   time.Time
}

// GetProfile returns user's profile, or ErrNotFound when the user set
// none.
func GetProfile(ctx context.Context, q Querier, user uuid.UUID) (Profile, error) {
	r, err := dbsqlc.New(q).GetProfile(ctx, user)
	if err != nil {
		return Profile{}, translate("getting profile", err)
	}
	return Profile{UserID: r.UserID, DisplayName: r.DisplayName, UpdatedAt: r.UpdatedAt}, nil
}

// SetProfile stores user's display name (1 to 64 characters; callers
// validate it first, the table's check is the backstop).
func SetProfile(ctx context.Context, q Querier, user uuid.UUID, displayName string) (Profile, error) {
	r, err := dbsqlc.New(q).UpsertProfile(ctx, dbsqlc.UpsertProfileParams{UserID: user, DisplayName: displayName})
	if err != nil {
		return Profile{}, translate("storing profile", err)
	}
	return Profile{UserID: r.UserID, DisplayName: r.DisplayName, UpdatedAt: r.UpdatedAt}, nil
}

// DeleteProfile forgets user's profile; it reports whether there was one.
func DeleteProfile(ctx context.Context, q Querier, user uuid.UUID) (bool, error) {
	n, err := dbsqlc.New(q).DeleteProfile(ctx, user)
	if err != nil {
		return false, translate("deleting profile", err)
	}
	return n > 0, nil
}
