package api_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/api"
	"github.com/msgrunner/msgrunner/api/apitest"
)

// TestDocumentsAreValidOpenAPI loads both documents with the validator
// (which refuses an invalid OpenAPI 3.1 document) and checks their JSON
// form is the same document.
func TestDocumentsAreValidOpenAPI(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		doc  *apitest.Doc
		json []byte
	}{
		"gateway": {apitest.Gateway(t), api.GatewayJSON()},
		"admin":   {apitest.Admin(t), api.AdminJSON()},
	} {
		var v map[string]any
		require.NoError(t, json.Unmarshal(c.json, &v), name)
		require.Equal(t, "3.1.0", v["openapi"], name)
		paths, _ := v["paths"].(map[string]any)
		require.NotEmpty(t, paths, name)
		require.Len(t, c.doc.Operations(), countOperations(paths), name)
	}
}

func countOperations(paths map[string]any) int {
	n := 0
	for _, item := range paths {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				n++
			}
		}
	}
	return n
}
