package keyring_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log"

	"github.com/msgrunner/msgrunner/internal/keyring"
)

// key returns a base64 key of KeySize bytes b, as ENCRYPTION_KEYS holds
// them.
func key(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, keyring.KeySize))
}

// Envelope encryption: each conversation has a data key, stored wrapped by
// the keyring's active key; the data key seals each message bound to its
// id. Rotating the keyring re-wraps data keys, so messages stay as sealed.
func ExampleKeyring() {
	ring, err := keyring.Parse("k1:"+key(1), "k1")
	if err != nil {
		log.Fatal(err)
	}
	conv := []byte("conversation-1")
	wrapped, kek, err := ring.NewDataKey(conv)
	if err != nil {
		log.Fatal(err)
	}
	dk, err := ring.Unwrap(wrapped, kek, conv)
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := dk.Seal([]byte("the door code is 4521"), []byte("message-1"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrapped by:", kek, "plaintext visible:", bytes.Contains(sealed, []byte("4521")))

	// Sealed for one message id, it does not open as another's.
	_, err = dk.Open(sealed, []byte("message-2"))
	fmt.Println("moved to another message:", errors.Is(err, keyring.ErrOpen))

	// Rotation: k2 becomes active; the data key is re-wrapped under it
	// and still opens what it sealed.
	rotated, err := keyring.Parse("k1:"+key(1)+",k2:"+key(2), "k2")
	if err != nil {
		log.Fatal(err)
	}
	rewrapped, kek2, err := rotated.Rewrap(wrapped, kek, conv)
	if err != nil {
		log.Fatal(err)
	}
	dk2, err := rotated.Unwrap(rewrapped, kek2, conv)
	if err != nil {
		log.Fatal(err)
	}
	plain, err := dk2.Open(sealed, []byte("message-1"))
	fmt.Println("after rotation to", kek2+":", string(plain), err)

	// A keyring without k2 cannot unwrap what k2 wrapped.
	_, err = ring.Unwrap(rewrapped, kek2, conv)
	fmt.Println(err)

	// Output:
	// wrapped by: k1 plaintext visible: false
	// moved to another message: true
	// after rotation to k2: the door code is 4521 <nil>
	// keyring: unknown key id "k2"
}

// Parse names what is wrong with a key list and never repeats the keys.
func ExampleParse() {
	for _, spec := range []struct{ keys, active string }{
		{"k1:" + key(1) + ",k2:" + key(2), "k2"},
		{"k1:" + key(1), "k3"},
		{"k1:" + base64.StdEncoding.EncodeToString([]byte("short")), "k1"},
		{"k1:" + key(1) + ",k1:" + key(2), "k1"},
	} {
		ring, err := keyring.Parse(spec.keys, spec.active)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println("keys", ring.IDs(), "active", ring.Active())
	}

	// Output:
	// keys [k1 k2] active k2
	// the active key "k3" is not in the keyring
	// key "k1" is 5 bytes; keys must be 32 bytes (AES-256)
	// key id "k1" appears twice
}
