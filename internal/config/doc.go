// Package config is the one list of the environment variables the
// binaries read, and the reading of them into plain values.
//
// Every variable is declared once, in settings.go: a Var constant for its
// name and an entry in the list with its kind, default, allowed range or
// values, the binaries that read it and one line of documentation.
// docs/configuration.md is generated from that list (`make
// generate-config-doc`), and `make test` fails when it is stale.
//
// The package never reads the process environment itself: binaries in
// cmd/ hand a Reader os.Getenv (tests hand it a map), so configuration
// stays explicit. A Reader parses values into plain structs (Runner,
// Gateway, AdminServe, ...) and builds nothing: making Redis clients,
// pools, keyrings, notification providers and tracers from the values is
// wiring, done by each binary's package and internal/boot. A Reader
// collects every problem instead of stopping at the first, and each
// problem names its variable; the wiring adds what its clients refuse with
// Fail, so one run of a misconfigured binary tells the operator everything
// to fix. Secrets are never quoted in a problem.
package config
