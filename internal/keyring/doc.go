// Package keyring does the envelope encryption of message content: each
// conversation has its own AES-256 data key, stored wrapped (AES-256-GCM)
// by a key-encryption key from the keyring, which comes from configuration
// and never reaches the database, the queue, Redis or logs.
//
// Two layers:
//
//   - Keyring holds the key-encryption keys (ENCRYPTION_KEYS, one of them
//     active). It makes data keys wrapped by the active key and bound to
//     their conversation's id, unwraps them, and re-wraps them under the
//     active key for rotation, which leaves the data key, and so every
//     message sealed with it, unchanged. A DataKey seals and opens content
//     with AES-256-GCM; a message's content is bound to the message's id,
//     so a ciphertext copied to another row does not open.
//   - Sealer keeps data keys in the conversation_keys table. A
//     conversation's data keys come in generations, labelled
//     "conversation-key-v<n>" (Label) in messages.key_id; new content is
//     sealed with the newest generation. Re-encryption (the
//     encrypt-decrypt worker) makes the next one with NewGeneration,
//     re-seals the older content and deletes the older generations. A conversation whose keys were destroyed
//     (crypto-shredding, by cleanup of a conversation every participant
//     deleted) opens as ErrShredded.
//
// Errors name what failed without revealing key material: ErrUnknownKey
// for a key id missing from the keyring, ErrOpen for a wrong key or
// tampered ciphertext.
package keyring
