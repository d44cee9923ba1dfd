package validation_test

import (
	"errors"
	"fmt"

	"github.com/msgrunner/msgrunner/validation"
)

// Every input check returns a *validation.Error; one errors.As tells bad
// input (answered 400, naming the field) from a failure, however deeply
// the error was wrapped.
func ExampleError() {
	check := func(limit int) error {
		if limit < 1 || limit > 1000 {
			return validation.Errorf("limit", "must be between 1 and 1000, got %d", limit)
		}
		return nil
	}
	for _, err := range []error{
		check(50),
		fmt.Errorf("listing jobs: %w", check(0)),
		errors.New("connection refused"),
	} {
		var ve *validation.Error
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.As(err, &ve):
			fmt.Printf("bad input in %q: %s\n", ve.Field, ve.Problem)
		default:
			fmt.Println("failure:", err)
		}
	}

	// Output:
	// ok
	// bad input in "limit": must be between 1 and 1000, got 0
	// failure: connection refused
}
