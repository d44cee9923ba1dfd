package jobs_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/validation"
)

// decodeArgs decodes raw as args of type T, as River does before working a
// job.
func decodeArgs[T jobs.Args](raw []byte) (jobs.Args, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// argDecoders decodes into every args type of the package, by kind.
var argDecoders = map[string]func([]byte) (jobs.Args, error){
	jobs.KindSendMessage:          decodeArgs[jobs.SendMessageArgs],
	jobs.KindDeliveryConfirmation: decodeArgs[jobs.DeliveryConfirmationArgs],
	jobs.KindSendNotification:     decodeArgs[jobs.SendNotificationArgs],
	jobs.KindIndexMessage:         decodeArgs[jobs.IndexMessageArgs],
	jobs.KindEncryptDecrypt:       decodeArgs[jobs.EncryptDecryptArgs],
	jobs.KindBatchSend:            decodeArgs[jobs.BatchSendArgs],
	jobs.KindCleanupMessages:      decodeArgs[jobs.CleanupMessagesArgs],
	jobs.KindReleaseScheduled:     decodeArgs[jobs.ReleaseScheduledArgs],
	jobs.KindJobHistory:           decodeArgs[jobs.JobHistoryArgs],
	jobs.KindDeliverPending:       decodeArgs[jobs.DeliverPendingArgs],
	jobs.KindIndexPending:         decodeArgs[jobs.IndexPendingArgs],
}

func TestEveryKindIsFuzzed(t *testing.T) {
	t.Parallel()
	for _, k := range jobs.Kinds() {
		require.Contains(t, argDecoders, k.Kind, "add the args of %s to argDecoders", k.Kind)
	}
}

// FuzzArgsDecode decodes arbitrary JSON into every args type: nothing
// panics, Validate refuses with a *validation.Error naming a field, and
// args Validate accepts round-trip (encode, decode, encode gives the same
// bytes, and the copy is still valid and of the same kind and queue).
func FuzzArgsDecode(f *testing.F) {
	id := `"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"`
	for _, s := range []string{
		`{"message_id":` + id + `}`,
		`{"message_id":` + id + `,"user_id":` + id + `,"status":"read","at":"2026-01-02T15:04:05.123+02:00"}`,
		`{"message_id":` + id + `,"recipient_id":` + id + `,"type":"new_message","channels":["push","sms","push"]}`,
		`{"message_id":` + id + `,"recipient_id":` + id + `,"type":"a\u0000b"}`,
		`{"message_id":` + id + `,"operation":"delete"}`,
		`{"operation":"decrypt","conversation_id":` + id + `,"requested_by":` + id + `,"reencrypt_content":true}`,
		`{"batch_id":` + id + `}`, `{"scheduled_id":` + id + `}`,
		`{"type":"old_messages","retention_days":36500,"batch_size":50000,"dry_run":true}`,
		`{"type":"expired_attachments","retention_days":9223372036854775807}`,
		`{"hours":168,"archive_retention_days":-1}`, `{"hours":1e309}`,
		`{"message_id":"00000000-0000-0000-0000-000000000000"}`, `{"message_id":"..%2f"}`,
		`{"at":"0000-01-01T00:00:00-01:00"}`, `{"at":"9999-12-31T23:59:59+00:00"}`,
		`null`, `[]`, `{}`, `"x"`, "{\"status\":\"\xff\"}", `{"status":"read\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for kind, decode := range argDecoders {
			a, err := decode(raw)
			if err != nil {
				continue
			}
			require.Equal(t, kind, a.Kind())
			if err := a.Validate(); err != nil {
				var ve *validation.Error
				require.True(t, errors.As(err, &ve), "%s: %v is not a *validation.Error", kind, err)
				require.NotEmpty(t, ve.Field, "%s: %v names no field", kind, err)
				continue
			}
			enc, err := json.Marshal(a)
			require.NoError(t, err, "%s: valid args %+v do not encode", kind, a)
			require.NotContains(t, string(enc), `\u0000`, "%s: River stores args as jsonb, which cannot hold NUL", kind)
			back, err := decode(enc)
			require.NoError(t, err, "%s: %s does not decode", kind, enc)
			require.NoError(t, back.Validate(), "%s: %s is no longer valid", kind, enc)
			again, err := json.Marshal(back)
			require.NoError(t, err)
			require.Equal(t, string(enc), string(again), "%s does not round-trip", kind)
			opts := back.InsertOpts()
			require.NotEmpty(t, opts.Queue)
			require.Positive(t, opts.MaxAttempts)
		}
	})
}
