// Package admincli is the operator's command line: schema migrations
// (`migrate`), token minting (`token`), the admin HTTP API with River UI
// and reports (`serve`), and commands that list and fix jobs (`jobs`),
// pause and resume queues (`queue`), print reports (`report`), and enqueue
// cleanups, encryption, exports and key rotations (`cleanup`, `encrypt`,
// `export`, `rotate`). `admin help` lists every command and flag.
//
// cmd/admin is a thin main around Run, so the whole command line runs in
// tests and can be embedded in another binary: Run reads the environment
// only through the getenv function it is given and writes only to the
// stdout and stderr it is given.
//
// Output conventions: a command's result goes to stdout (a table, or JSON
// with --json; reports also as CSV); logs of `serve` and one JSON audit
// line per change a command makes (who, via, action, job or queue) go to
// stderr, never message content or secrets. A mistake in the command line
// exits with status 2 and prints the usage; any other failure exits with
// status 1.
package admincli
