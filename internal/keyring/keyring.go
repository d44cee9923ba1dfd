package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// KeySize is the size of every key: AES-256.
const KeySize = 32

// ErrUnknownKey is returned for a wrapped key whose key-encryption key is
// not in the keyring.
var ErrUnknownKey = errors.New("keyring: unknown key id")

// ErrOpen is returned when ciphertext does not authenticate: a wrong key or
// tampered bytes. It says nothing more, on purpose.
var ErrOpen = errors.New("keyring: ciphertext does not authenticate (wrong key or tampered)")

// Keyring holds key-encryption keys by id and names the active one (used to
// wrap new data keys). It is safe for concurrent use.
type Keyring struct {
	keys   map[string]cipher.AEAD
	active string
}

// Parse reads "id1:<base64 of 32 bytes>,id2:<...>" and the active id.
// Errors name what is wrong (never the key material).
func Parse(spec, active string) (*Keyring, error) {
	k := &Keyring{keys: map[string]cipher.AEAD{}, active: strings.TrimSpace(active)}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		id = strings.TrimSpace(id)
		if !ok || id == "" {
			return nil, fmt.Errorf("entry %d is not id:<base64 key>", i+1)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("key id %q appears twice", id)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("key %q is not valid base64", id)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("key %q is %d bytes; keys must be %d bytes (AES-256)", id, len(raw), KeySize)
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, err
		}
		k.keys[id] = aead
	}
	switch {
	case len(k.keys) == 0:
		return nil, errors.New("no keys given")
	case k.active == "":
		return nil, errors.New("no active key named")
	}
	if _, ok := k.keys[k.active]; !ok {
		return nil, fmt.Errorf("the active key %q is not in the keyring", k.active)
	}
	return k, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// Active returns the id of the key that wraps new data keys.
func (k *Keyring) Active() string { return k.active }

// IDs returns the key ids, sorted.
func (k *Keyring) IDs() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func seal(aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrOpen
	}
	n := aead.NonceSize()
	out, err := aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// NewDataKey returns a fresh data key wrapped by the active key, bound to
// context (the conversation id), and the id of the key that wrapped it.
func (k *Keyring) NewDataKey(context []byte) (wrapped []byte, kekID string, err error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, "", fmt.Errorf("keyring: data key: %w", err)
	}
	wrapped, err = seal(k.keys[k.active], dek, context)
	return wrapped, k.active, err
}

// Unwrap returns the data key wrapped by kekID for context.
func (k *Keyring) Unwrap(wrapped []byte, kekID string, context []byte) (*DataKey, error) {
	kek, ok := k.keys[kekID]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, kekID)
	}
	raw, err := open(kek, wrapped, context)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	return &DataKey{aead: aead, raw: raw}, nil
}

// Rewrap re-wraps a data key under the active key (rotation); the data key
// itself, and so every message sealed with it, is unchanged.
func (k *Keyring) Rewrap(wrapped []byte, kekID string, context []byte) ([]byte, string, error) {
	dk, err := k.Unwrap(wrapped, kekID, context)
	if err != nil {
		return nil, "", err
	}
	out, err := seal(k.keys[k.active], dk.raw, context)
	return out, k.active, err
}

// DataKey seals and opens one conversation's message content.
type DataKey struct {
	aead  cipher.AEAD
	raw   []byte
	label string // set by Sealer: the messages.key_id of this generation
}

// Label is the messages.key_id of what this key seals ("" for a key not
// obtained through a Sealer).
func (d *DataKey) Label() string { return d.label }

// Seal encrypts plaintext bound to aad (the message id).
func (d *DataKey) Seal(plaintext, aad []byte) ([]byte, error) { return seal(d.aead, plaintext, aad) }

// Open decrypts what Seal produced for the same aad, or returns ErrOpen.
func (d *DataKey) Open(sealed, aad []byte) ([]byte, error) { return open(d.aead, sealed, aad) }
