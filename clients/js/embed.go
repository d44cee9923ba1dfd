// Package jsclient embeds the built TypeScript client (dist/index.js, an
// ES module with no imports) so the gateway can serve it to the demo page
// at /client.js. The package's test runs the client's Node tests against
// real gateways and a runner.
package jsclient

import _ "embed"

// Module is dist/index.js, built from src/ by `npm run build` (make
// generate-js); make check-generated fails when it is stale.
//
//go:embed dist/index.js
var Module []byte
