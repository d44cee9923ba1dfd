package auth_test

import (
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/clocktest"
)

// An Authority mints a user's bearer token and verifies it until it
// expires (plus Leeway for clock skew). The clock here is one the example
// moves, so no time has to pass.
func ExampleAuthority() {
	secret := []byte(strings.Repeat("s", auth.MinSecretBytes))
	clock := clocktest.New(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	a, err := auth.New(secret, auth.WithIssuer("msgrunner"), auth.WithClock(clock.Now))
	if err != nil {
		log.Fatal(err)
	}
	alice := uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	tok, err := a.Mint(alice, 15*time.Minute)
	if err != nil {
		log.Fatal(err)
	}

	user, err := a.Verify(tok)
	fmt.Println("now:", user, err)

	clock.Advance(15*time.Minute + auth.Leeway - time.Second)
	_, err = a.Verify(tok)
	fmt.Println("just inside the leeway:", err)

	clock.Advance(2 * time.Second)
	_, err = a.Verify(tok)
	fmt.Println("after it:", err, errors.Is(err, auth.ErrExpired))

	// Another secret's token, or another issuer's, is invalid; the error
	// never quotes the token.
	other, err := auth.New([]byte(strings.Repeat("o", auth.MinSecretBytes)))
	if err != nil {
		log.Fatal(err)
	}
	forged, err := other.Mint(alice, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	_, err = a.Verify(forged)
	fmt.Println("forged:", err)
	_, err = a.Verify("")
	fmt.Println("none:", err)

	// Output:
	// now: 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b <nil>
	// just inside the leeway: <nil>
	// after it: token expired true
	// forged: invalid token
	// none: missing bearer token
}
