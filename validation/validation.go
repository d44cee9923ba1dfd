// Package validation holds the error type every input check in this project
// returns, so callers at any edge (HTTP, CLI, job insertion) can tell bad
// input from failure with one errors.As and name the offending field.
package validation

import "fmt"

// Error reports one invalid input field. Field uses the name the caller
// knows: the JSON name for API and job args, the flag or variable name for
// configuration.
type Error struct {
	Field   string
	Problem string
}

// Error implements error as "FIELD: PROBLEM".
func (e *Error) Error() string { return e.Field + ": " + e.Problem }

// Errorf returns an *Error for field with a formatted problem.
func Errorf(field, format string, args ...any) *Error {
	return &Error{Field: field, Problem: fmt.Sprintf(format, args...)}
}
