// Package api holds the OpenAPI 3.1 documents of the gateway's HTTP API
// (gateway.yaml, with the JSON Schemas of every websocket frame) and of the
// admin server (admin.yaml). The servers answer them as JSON (GET
// /v1/openapi.json on the gateway, GET /openapi.json on the admin server),
// and the test suites check every registered route against them and
// validate real responses and frames with them.
package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed gateway.yaml
var gatewayYAML []byte

//go:embed admin.yaml
var adminYAML []byte

// GatewayYAML returns the gateway's document as written.
func GatewayYAML() []byte { return gatewayYAML }

// AdminYAML returns the admin server's document as written.
func AdminYAML() []byte { return adminYAML }

var (
	gatewayJSON = sync.OnceValue(func() []byte { return mustJSON("gateway.yaml", gatewayYAML) })
	adminJSON   = sync.OnceValue(func() []byte { return mustJSON("admin.yaml", adminYAML) })
)

// GatewayJSON returns the gateway's document as JSON.
func GatewayJSON() []byte { return gatewayJSON() }

// AdminJSON returns the admin server's document as JSON.
func AdminJSON() []byte { return adminJSON() }

// mustJSON converts an embedded YAML document to JSON; the package's own
// test proves both convert, so a failure here is a build defect.
func mustJSON(name string, doc []byte) []byte {
	out, err := toJSON(doc)
	if err != nil {
		panic(fmt.Sprintf("api: %s: %v", name, err))
	}
	return out
}

func toJSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
