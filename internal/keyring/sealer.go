package keyring

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/db"
)

// DataKeyLabel is the messages.key_id of a conversation's first data key
// generation. Later generations (made by re-encryption) are
// "conversation-key-v<generation>"; see Label.
const DataKeyLabel = "conversation-key-v1"

const labelPrefix = "conversation-key-v"

// Label returns the messages.key_id of data key generation gen.
func Label(gen int) string { return labelPrefix + strconv.Itoa(gen) }

// LabelGeneration returns the generation a messages.key_id names.
func LabelGeneration(label string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(label, labelPrefix))
	if err != nil || n < 1 || !strings.HasPrefix(label, labelPrefix) {
		return 0, false
	}
	return n, true
}

// ErrShredded is returned when a conversation's key no longer exists.
var ErrShredded = errors.New("keyring: the conversation's key was destroyed (crypto-shredded)")

// Sealer encrypts and decrypts message content with per-conversation data
// keys stored in the database. It is safe for concurrent use.
type Sealer struct{ ring *Keyring }

// NewSealer returns a Sealer over ring.
func NewSealer(ring *Keyring) *Sealer { return &Sealer{ring: ring} }

// Keyring returns the key-encryption keys in use.
func (s *Sealer) Keyring() *Keyring { return s.ring }

func (s *Sealer) unwrap(k db.WrappedKey) (*DataKey, error) {
	dk, err := s.ring.Unwrap(k.Wrapped, k.KEKID, k.ConversationID[:])
	if err != nil {
		return nil, err
	}
	dk.label = Label(k.Generation)
	return dk, nil
}

// ConversationKey returns conversation conv's newest data key, the one new
// messages are sealed with, for bulk work that seals or opens many of its
// messages with one key read. With create set it creates generation 1
// (wrapped by the active key) when there is none. Errors: ErrShredded (no
// key and create unset), ErrUnknownKey, ErrOpen.
func (s *Sealer) ConversationKey(ctx context.Context, q db.Querier, conv uuid.UUID, create bool) (*DataKey, error) {
	k, err := db.GetConversationKey(ctx, q, conv)
	if errors.Is(err, db.ErrNotFound) && create {
		wrapped, kek, err := s.ring.NewDataKey(conv[:])
		if err != nil {
			return nil, err
		}
		if err := db.InsertConversationKey(ctx, q, db.WrappedKey{ConversationID: conv, Generation: 1, KEKID: kek, Wrapped: wrapped}); err != nil {
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
	return s.unwrap(k)
}

// KeyFor returns the data key that sealed messages labelled label in
// conversation conv. Errors: ErrUnknownKey (not a label of ours),
// ErrShredded (that generation was destroyed or retired), ErrOpen.
func (s *Sealer) KeyFor(ctx context.Context, q db.Querier, conv uuid.UUID, label string) (*DataKey, error) {
	gen, ok := LabelGeneration(label)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, label)
	}
	k, err := db.GetConversationKeyGeneration(ctx, q, conv, gen)
	if errors.Is(err, db.ErrNotFound) {
		return nil, ErrShredded
	}
	if err != nil {
		return nil, err
	}
	return s.unwrap(k)
}

// NewGeneration returns a data key generation of conv made at or after
// notBefore (by the database's clock), creating the next generation,
// wrapped by the active key, when the newest is older. So a re-encryption
// job that restarts keeps moving content to the generation its first run
// made. ErrShredded when the conversation has no key at all.
func (s *Sealer) NewGeneration(ctx context.Context, q db.Querier, conv uuid.UUID, notBefore time.Time) (*DataKey, error) {
	k, err := db.GetConversationKey(ctx, q, conv)
	if errors.Is(err, db.ErrNotFound) {
		return nil, ErrShredded
	}
	if err != nil {
		return nil, err
	}
	if !k.CreatedAt.Before(notBefore) {
		return s.unwrap(k)
	}
	wrapped, kek, err := s.ring.NewDataKey(conv[:])
	if err != nil {
		return nil, err
	}
	next := db.WrappedKey{ConversationID: conv, Generation: k.Generation + 1, KEKID: kek, Wrapped: wrapped}
	if err := db.InsertConversationKey(ctx, q, next); err != nil {
		return nil, err
	}
	// A concurrent run may have made it first: use what won.
	k, err = db.GetConversationKeyGeneration(ctx, q, conv, next.Generation)
	if err != nil {
		return nil, err
	}
	return s.unwrap(k)
}

// Seal encrypts content for message id of conversation conv with its
// newest data key (creating the first on first use) and returns the
// ciphertext and the key label to store with it.
func (s *Sealer) Seal(ctx context.Context, q db.Querier, conv, id uuid.UUID, content string) ([]byte, string, error) {
	dk, err := s.ConversationKey(ctx, q, conv, true)
	if err != nil {
		return nil, "", err
	}
	sealed, err := dk.Seal([]byte(content), id[:])
	return sealed, dk.label, err
}

// Open decrypts a stored message's ciphertext. Errors: ErrShredded,
// ErrUnknownKey, ErrOpen (wrong key or tampered).
func (s *Sealer) Open(ctx context.Context, q db.Querier, m db.Message) (string, error) {
	return s.NewOpener().Open(ctx, q, m)
}

// Opener opens many messages with one key read (and unwrap) per
// conversation and key generation: make one per request or page. It is not
// safe for concurrent use.
type Opener struct {
	s    *Sealer
	keys map[openerKey]*DataKey
}

type openerKey struct {
	conv  uuid.UUID
	label string
}

// NewOpener returns an Opener with an empty key cache.
func (s *Sealer) NewOpener() *Opener { return &Opener{s: s, keys: map[openerKey]*DataKey{}} }

// Open is Sealer.Open, reusing keys this Opener has read before.
func (o *Opener) Open(ctx context.Context, q db.Querier, m db.Message) (string, error) {
	if m.Content != nil {
		return *m.Content, nil
	}
	label := "(none)"
	if m.KeyID != nil {
		label = *m.KeyID
	}
	k := openerKey{conv: m.ConversationID, label: label}
	dk := o.keys[k]
	if dk == nil {
		var err error
		if dk, err = o.s.KeyFor(ctx, q, m.ConversationID, label); err != nil {
			return "", err
		}
		o.keys[k] = dk
	}
	plain, err := dk.Open(m.Ciphertext, m.ID[:])
	return string(plain), err
}

// Rotate re-wraps every generation of conversation conv's data key under
// the active key. It reports whether anything changed (false when all
// were already under it).
func (s *Sealer) Rotate(ctx context.Context, q db.Querier, conv uuid.UUID) (bool, error) {
	keys, err := db.ListConversationKeys(ctx, q, conv)
	if err != nil {
		return false, err
	}
	changed := false
	for _, k := range keys {
		if k.KEKID == s.ring.Active() {
			continue
		}
		wrapped, kek, err := s.ring.Rewrap(k.Wrapped, k.KEKID, conv[:])
		if err != nil {
			return changed, err
		}
		ok, err := db.RewrapConversationKey(ctx, q, db.WrappedKey{ConversationID: conv, Generation: k.Generation, KEKID: kek, Wrapped: wrapped}, k.KEKID)
		if err != nil {
			return changed, err
		}
		changed = changed || ok
	}
	return changed, nil
}
