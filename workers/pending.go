package workers

import (
	"context"

	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/jobs"
)

// The workers below are registered so that every kind has its queue,
// timeout and retry schedule from the start, but their work belongs to
// later issues. Until it lands each one cancels its job with an error that
// says what is missing, rather than pretending to succeed.

// SendNotificationWorker notifies a recipient on push, email, SMS and in-app.
type SendNotificationWorker struct {
	Policy[jobs.SendNotificationArgs]
	deps Deps
}

// Work implements river.Worker.
func (w *SendNotificationWorker) Work(ctx context.Context, job *river.Job[jobs.SendNotificationArgs]) error {
	return notImplemented(jobs.KindSendNotification, "notification providers, preferences and templates (notifications issue)")
}
