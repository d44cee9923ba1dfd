package httperr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/msgrunner/msgrunner/validation"
)

// DecodeJSON decodes exactly one JSON object with only known fields from
// raw into v. raw must be UTF-8: encoding/json would quietly turn invalid
// bytes into U+FFFD and store what the client never sent. Errors are 400
// bad_json, or a *validation.Error naming the field that is unknown or of
// the wrong type.
func DecodeJSON(raw []byte, v any) error {
	if !utf8.Valid(raw) {
		return New(http.StatusBadRequest, "bad_json", "body is not valid UTF-8 (JSON text must be UTF-8)")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typ) && typ.Field == "":
			return New(http.StatusBadRequest, "bad_json", "body must be a JSON object, not a JSON "+typ.Value)
		case errors.As(err, &typ):
			return validation.Errorf(typ.Field, "has the wrong type (want %s)", typ.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return validation.Errorf(field, "is not a known field")
		default: // syntax errors, an empty or cut-off body
			return New(http.StatusBadRequest, "bad_json", "body is not a valid JSON object")
		}
	}
	if dec.More() {
		return New(http.StatusBadRequest, "bad_json", "body must hold exactly one JSON object")
	}
	return nil
}

// CheckContentType refuses a declared request Content-Type other than
// application/json with 415 unsupported_type naming the header; an empty
// one is taken as JSON.
func CheckContentType(contentType string) error {
	if contentType == "" {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/json" {
		return nil
	}
	return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_type", Field: "Content-Type",
		Message: fmt.Sprintf("the body must be sent as application/json, not %q", contentType)}
}
