package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// Preferences are a user's notification choices. DefaultPreferences applies
// to users who never set any.
type Preferences struct {
	Push, InApp, Email, SMS bool
	EmailAddress, Phone     *string
	// NotifyWhenOnline sends push, email and SMS even while the user has a
	// socket open.
	NotifyWhenOnline bool
}

// DefaultPreferences: push and in-app on, email and SMS off.
var DefaultPreferences = Preferences{Push: true, InApp: true}

// GetPreferences returns user's preferences, or DefaultPreferences.
func GetPreferences(ctx context.Context, q Querier, user uuid.UUID) (Preferences, error) {
	r, err := dbsqlc.New(q).GetPreferences(ctx, user)
	if err != nil {
		if err = translate("getting preferences", err); errors.Is(err, ErrNotFound) {
			return DefaultPreferences, nil
		}
		return Preferences{}, err
	}
	return Preferences{Push: r.PushEnabled, InApp: r.InAppEnabled, Email: r.EmailEnabled, SMS: r.SmsEnabled,
		EmailAddress: r.Email, Phone: r.Phone, NotifyWhenOnline: r.NotifyWhenOnline}, nil
}

// SetPreferences stores user's preferences.
func SetPreferences(ctx context.Context, q Querier, user uuid.UUID, p Preferences) error {
	_, err := dbsqlc.New(q).UpsertPreferences(ctx, dbsqlc.UpsertPreferencesParams{
		UserID: user, PushEnabled: p.Push, InAppEnabled: p.InApp, EmailEnabled: p.Email, SmsEnabled: p.SMS,
		Email: p.EmailAddress, Phone: p.Phone, NotifyWhenOnline: p.NotifyWhenOnline,
	})
	return translate("storing preferences", err)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Claim is one channel's notification as ClaimMessageNotifications left
// it.
type Claim struct {
	ID     uuid.UUID
	Status string
}

// notificationChannels are the values of the notification_channel type.
var notificationChannels = []string{"email", "in_app", "push", "sms"}

// NotificationClaims is what ClaimMessageNotifications read and claimed.
type NotificationClaims struct {
	Message Message
	// Preferences are the recipient's, or DefaultPreferences when none
	// are stored.
	Preferences Preferences
	// Channels are the channels to notify on, in name order.
	Channels []string
	// Claims holds each channel's notification: created pending by this
	// call, or as an earlier attempt left it (its Status tells whether it
	// already finished).
	Claims map[string]Claim
	// SenderName is the sender's display name; empty when none is set.
	SenderName string
	// Muted says the recipient muted the message's conversation until
	// later than now: push, email and SMS are suppressed, in-app is not.
	Muted bool
}

// ClaimMessageNotifications reads message and the notification
// preferences of user, and claims the notification of each channel to
// notify on (channels when not empty, else those the preferences
// enable), all in one statement: one row per (message, user, channel)
// whatever the retries. It returns ErrNotFound when the message does not
// exist. A channel whose row another transaction is creating at that
// moment is an error: the caller retries.
func ClaimMessageNotifications(ctx context.Context, q Querier, message, user uuid.UUID, channels []string, typ string) (NotificationClaims, error) {
	explicit := len(channels) > 0
	candidates := channels
	if !explicit {
		candidates = notificationChannels
	}
	ids := make([]uuid.UUID, len(candidates))
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	d := DefaultPreferences
	rows, err := dbsqlc.New(q).ClaimMessageNotifications(ctx, dbsqlc.ClaimMessageNotificationsParams{
		UserID: user, MessageID: message, Channels: candidates, Ids: ids, Explicit: explicit,
		DefaultPush: d.Push, DefaultInApp: d.InApp, DefaultEmail: d.Email, DefaultSms: d.SMS, Type: typ,
	})
	if err != nil {
		return NotificationClaims{}, translate("claiming notifications", err)
	}
	if len(rows) == 0 {
		return NotificationClaims{}, fmt.Errorf("claiming notifications: message %s: %w", message, ErrNotFound)
	}
	r := rows[0]
	out := NotificationClaims{Message: messageFromRow(r.Message), Preferences: d, Claims: make(map[string]Claim, len(rows)),
		SenderName: deref(r.SenderName), Muted: r.Muted}
	if r.PushEnabled != nil { // the user has stored preferences
		out.Preferences = Preferences{Push: *r.PushEnabled, InApp: deref(r.InAppEnabled), Email: deref(r.EmailEnabled),
			SMS: deref(r.SmsEnabled), EmailAddress: r.Email, Phone: r.Phone, NotifyWhenOnline: deref(r.NotifyWhenOnline)}
	}
	for _, r := range rows {
		if r.WantedChannel == "" {
			continue // no channel to notify on
		}
		if r.ClaimStatus == "" {
			return NotificationClaims{}, fmt.Errorf("claiming notifications: the %s notification is being created by another transaction", r.WantedChannel)
		}
		out.Channels = append(out.Channels, r.WantedChannel)
		out.Claims[r.WantedChannel] = Claim{ID: r.ClaimID, Status: r.ClaimStatus}
	}
	return out, nil
}

// NotificationResult finishes a pending notification.
type NotificationResult struct {
	Status            string // sent, failed, cancelled, suppressed
	Title, Body       *string
	ProviderMessageID *string
	Reason            *string
}

// FinishNotification records how notification id ended (only if still
// pending).
func FinishNotification(ctx context.Context, q Querier, id uuid.UUID, r NotificationResult) error {
	return translate("finishing notification", dbsqlc.New(q).FinishNotification(ctx, dbsqlc.FinishNotificationParams{
		ID: id, Status: dbsqlc.NotificationStatus(r.Status), Title: r.Title, Body: r.Body,
		ProviderMessageID: r.ProviderMessageID, FailureReason: r.Reason,
	}))
}

// FinishNotifications is FinishNotification for several notifications, in
// one round trip (pipelined statements).
func FinishNotifications(ctx context.Context, q Querier, results map[uuid.UUID]NotificationResult) error {
	if len(results) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for id, r := range results {
		// The arguments in the order of dbsqlc.FinishNotificationParams.
		b.Queue(dbsqlc.FinishNotification, dbsqlc.NotificationStatus(r.Status), r.Title, r.Body, r.ProviderMessageID, r.Reason, id)
	}
	return translate("finishing notifications", q.SendBatch(ctx, b).Close())
}

// RegisterDevice records (or re-activates) a device token for user and
// returns its id.
func RegisterDevice(ctx context.Context, q Querier, user uuid.UUID, platform, token string) (uuid.UUID, error) {
	r, err := dbsqlc.New(q).RegisterDevice(ctx, dbsqlc.RegisterDeviceParams{
		ID: uuid.Must(uuid.NewV7()), UserID: user, Platform: dbsqlc.DevicePlatform(platform), Token: token,
	})
	if err != nil {
		return uuid.Nil, translate("registering device", err)
	}
	return r.ID, nil
}

// DeactivateDevice deactivates user's device id, or returns ErrNotFound.
func DeactivateDevice(ctx context.Context, q Querier, user, id uuid.UUID) error {
	n, err := dbsqlc.New(q).DeactivateDevice(ctx, dbsqlc.DeactivateDeviceParams{ID: id, UserID: user})
	if err != nil {
		return translate("deactivating device", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Device is an active device token of a user.
type Device struct {
	ID       uuid.UUID
	Platform string
	Token    string
}

// ListActiveDevices returns user's active device tokens, oldest first.
func ListActiveDevices(ctx context.Context, q Querier, user uuid.UUID) ([]Device, error) {
	rows, err := dbsqlc.New(q).ListActiveDevices(ctx, user)
	if err != nil {
		return nil, translate("listing devices", err)
	}
	out := make([]Device, len(rows))
	for i, r := range rows {
		out[i] = Device{ID: r.ID, Platform: r.Platform, Token: r.Token}
	}
	return out, nil
}

// ClaimDelivery returns the status of the push of notification to device,
// creating it (pending) on first call, so a retried job never pushes twice
// to a device an earlier attempt finished.
func ClaimDelivery(ctx context.Context, q Querier, notification, device uuid.UUID) (status string, providerMessageID *string, err error) {
	r, err := dbsqlc.New(q).ClaimDelivery(ctx, dbsqlc.ClaimDeliveryParams{NotificationID: notification, DeviceTokenID: device})
	if err != nil {
		return "", nil, translate("claiming delivery", err)
	}
	return r.Status, r.ProviderMessageID, nil
}

// FinishDelivery records how the push of notification to device ended
// (only if still pending). r's Title and Body are ignored.
func FinishDelivery(ctx context.Context, q Querier, notification, device uuid.UUID, r NotificationResult) error {
	return translate("finishing delivery", dbsqlc.New(q).FinishDelivery(ctx, dbsqlc.FinishDeliveryParams{
		NotificationID: notification, DeviceTokenID: device, Status: dbsqlc.NotificationStatus(r.Status),
		ProviderMessageID: r.ProviderMessageID, FailureReason: r.Reason,
	}))
}

// DeactivateDeviceToken deactivates device id if it still holds token (a
// push provider called the token invalid). It reports whether it did.
func DeactivateDeviceToken(ctx context.Context, q Querier, id uuid.UUID, token string) (bool, error) {
	n, err := dbsqlc.New(q).DeactivateDeviceToken(ctx, dbsqlc.DeactivateDeviceTokenParams{ID: id, Token: token})
	if err != nil {
		return false, translate("deactivating device token", err)
	}
	return n > 0, nil
}
