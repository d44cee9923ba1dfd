package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/db"
)

// DataKeyLabel is stored as messages.key_id: the conversation's data key
// (one per conversation; rotation re-wraps it without changing it).
const DataKeyLabel = "conversation-key-v1"

// ErrShredded is returned when a conversation's key no longer exists.
var ErrShredded = errors.New("keyring: the conversation's key was destroyed (crypto-shredded)")

// Sealer encrypts and decrypts message content with per-conversation data
// keys stored in the database. It is safe for concurrent use.
type Sealer struct{ ring *Keyring }

// NewSealer returns a Sealer over ring.
func NewSealer(ring *Keyring) *Sealer { return &Sealer{ring: ring} }

// Keyring returns the key-encryption keys in use.
func (s *Sealer) Keyring() *Keyring { return s.ring }

// dataKey returns the conversation's data key, creating it when create is
// set and there is none.
func (s *Sealer) dataKey(ctx context.Context, q db.Querier, conv uuid.UUID, create bool) (*DataKey, error) {
	k, err := db.GetConversationKey(ctx, q, conv)
	if errors.Is(err, db.ErrNotFound) && create {
		wrapped, kek, err := s.ring.NewDataKey(conv[:])
		if err != nil {
			return nil, err
		}
		if err := db.InsertConversationKey(ctx, q, db.WrappedKey{ConversationID: conv, KEKID: kek, Wrapped: wrapped}); err != nil {
			return nil, err
		}
		// Another writer may have created it first: read what won.
		k, err = db.GetConversationKey(ctx, q, conv)
		if err != nil {
			return nil, err
		}
	} else if errors.Is(err, db.ErrNotFound) {
		return nil, ErrShredded
	} else if err != nil {
		return nil, err
	}
	return s.ring.Unwrap(k.Wrapped, k.KEKID, conv[:])
}

// ConversationKey returns conversation conv's data key, for bulk work that
// seals or opens many of its messages with one key read. With create set
// it creates the key (wrapped by the active key) when there is none.
// Errors: ErrShredded (no key and create unset), ErrUnknownKey, ErrOpen.
func (s *Sealer) ConversationKey(ctx context.Context, q db.Querier, conv uuid.UUID, create bool) (*DataKey, error) {
	return s.dataKey(ctx, q, conv, create)
}

// Seal encrypts content for message id of conversation conv (creating the
// conversation's data key on first use) and returns the ciphertext and
// the key label to store with it.
func (s *Sealer) Seal(ctx context.Context, q db.Querier, conv, id uuid.UUID, content string) ([]byte, string, error) {
	dk, err := s.dataKey(ctx, q, conv, true)
	if err != nil {
		return nil, "", err
	}
	sealed, err := dk.Seal([]byte(content), id[:])
	return sealed, DataKeyLabel, err
}

// Open decrypts a stored message's ciphertext. Errors: ErrShredded,
// ErrUnknownKey, ErrOpen (wrong key or tampered).
func (s *Sealer) Open(ctx context.Context, q db.Querier, m db.Message) (string, error) {
	if m.Content != nil {
		return *m.Content, nil
	}
	if m.KeyID == nil || *m.KeyID != DataKeyLabel {
		label := "(none)"
		if m.KeyID != nil {
			label = *m.KeyID
		}
		return "", fmt.Errorf("%w %q", ErrUnknownKey, label)
	}
	dk, err := s.dataKey(ctx, q, m.ConversationID, false)
	if err != nil {
		return "", err
	}
	plain, err := dk.Open(m.Ciphertext, m.ID[:])
	return string(plain), err
}

// Rotate re-wraps conversation conv's data key under the active key. It
// reports whether anything changed (false when already under it).
func (s *Sealer) Rotate(ctx context.Context, q db.Querier, conv uuid.UUID) (bool, error) {
	k, err := db.GetConversationKey(ctx, q, conv)
	if errors.Is(err, db.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if k.KEKID == s.ring.Active() {
		return false, nil
	}
	wrapped, kek, err := s.ring.Rewrap(k.Wrapped, k.KEKID, conv[:])
	if err != nil {
		return false, err
	}
	return db.RewrapConversationKey(ctx, q, db.WrappedKey{ConversationID: conv, KEKID: kek, Wrapped: wrapped}, k.KEKID)
}
