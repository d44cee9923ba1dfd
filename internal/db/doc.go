// Package db owns the connection to PostgreSQL: the pgx pool, schema
// migration through goose's Provider, and the queries compiled by sqlc.
//
// sqlc's generated code lives in internal/dbsqlc and never crosses this
// package's exported API: queries are wrapped by functions that take a
// Querier (a pool, a connection or a transaction) and return this package's
// own types. Errors are translated at the same edge: no rows becomes
// ErrNotFound, a unique violation ErrConflict.
package db
