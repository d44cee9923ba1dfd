package gateway_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/api/apitest"
)

// checked validates every answer the tests get from a test gateway
// against api/gateway.yaml (startNode registers each node).
var checked = apitest.Install()

func TestMain(m *testing.M) {
	code := m.Run()
	if f := checked.Failures(); len(f) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d answers of the test gateways do not match api/gateway.yaml:\n", len(f))
		for _, s := range f {
			fmt.Fprintln(os.Stderr, s)
		}
		code = 1
	}
	os.Exit(code)
}

// TestRoutesMatchTheDocument: every route a gateway serves is in
// api/gateway.yaml and every operation there is served.
func TestRoutesMatchTheDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e, ok := b.nodes[0].srv.Handler().(*echo.Echo)
	require.True(t, ok)
	apitest.Gateway(t).CheckRoutes(t, e)
}

// TestOpenAPIDocumentIsServed: GET /v1/openapi.json answers the document,
// without a token.
func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, doc := do(t, "GET", b.nodes[0].base+"/v1/openapi.json", "", nil)
	require.Equal(t, 200, status)
	require.Equal(t, "3.1.0", doc["openapi"])
	require.Contains(t, doc["paths"], "/v1/messages")
}
