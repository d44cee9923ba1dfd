// Package fanout carries realtime frames through Redis and keeps the hot
// caches there. Postgres stays the source of truth: everything here may be
// lost, and every reader falls back to Postgres.
//
// Each user has one channel, "<prefix>user:{<user id>}". The runner (and the
// gateway's fast path) publish a user's message and receipt frames on it;
// each gateway node holds one Redis connection subscribed to the channels of
// the users connected to it (Hub), so any number of nodes share the load and
// a frame only ever reaches the sockets of the user it names.
//
// The braces make the user id a Redis Cluster hash tag: a user's channel and
// cache keys hash to the same slot, so on a cluster the same names work with
// sharded pub/sub (SSUBSCRIBE/SPUBLISH), which routes each channel to the
// shard that owns its slot instead of broadcasting every message to every
// node.
package fanout
