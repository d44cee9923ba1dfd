package db

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// AttachmentRef is an attachment as a message and its frames show it.
type AttachmentRef struct {
	ID          uuid.UUID `json:"id"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
}

// LockAttachments locks, until tx ends, the attachments with these ids
// that owner may attach to message (theirs, not attached to another
// message, not expired), and returns them in the order of ids as the JSON
// the message stores, with the ids that are not among them. tx must be a
// transaction.
func LockAttachments(ctx context.Context, tx Querier, owner, message uuid.UUID, ids []uuid.UUID) (refs []byte, unavailable []uuid.UUID, err error) {
	rows, err := dbsqlc.New(tx).LockAttachmentsForMessage(ctx, dbsqlc.LockAttachmentsForMessageParams{Ids: ids, OwnerID: owner, MessageID: message})
	if err != nil {
		return nil, nil, translate("locking attachments", err)
	}
	found := make(map[uuid.UUID]AttachmentRef, len(rows))
	for _, r := range rows {
		found[r.ID] = AttachmentRef{ID: r.ID, ContentType: r.ContentType, Size: r.SizeBytes}
	}
	list := make([]AttachmentRef, 0, len(ids))
	for _, id := range ids {
		if ref, ok := found[id]; ok {
			list = append(list, ref)
		} else {
			unavailable = append(unavailable, id)
		}
	}
	if len(unavailable) > 0 {
		return nil, unavailable, nil
	}
	refs, err = json.Marshal(list)
	return refs, nil, err
}

// LinkAttachments records that message carries the attachments ids (which
// LockAttachments locked in the same transaction): from then on the
// message's recipient may read them.
func LinkAttachments(ctx context.Context, tx Querier, message uuid.UUID, ids []uuid.UUID) error {
	_, err := dbsqlc.New(tx).LinkAttachments(ctx, dbsqlc.LinkAttachmentsParams{MessageID: &message, Ids: ids})
	return translate("linking attachments", err)
}
