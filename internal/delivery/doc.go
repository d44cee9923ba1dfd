// Package delivery gets stored messages to their recipients and marks
// them sent. It is the one owner of "publish these, mark those": every
// path that delivers a message goes through Deliverer.deliver, which
// publishes the pending messages of a batch in one Redis round trip
// (package fanout) and marks sent, in one statement, those whose frame
// Redis took.
//
// Four paths use it:
//
//   - The gateway's fast path (Deliverer.AfterCommit): right after the
//     message's transaction commits, the gateway publishes it and answers
//     the client; the sent mark follows in a batch a few milliseconds
//     later, off the request's path (Config.DeferMarks).
//   - The send-message worker (Batcher): the jobs running at the same
//     moment hand their message ids to one batch, which reads them with
//     one statement, publishes them in one round trip and marks them with
//     one statement; each job still ends on its own message's outcome.
//   - Broadcast chunks (Deliverer.DeliverMany): the messages a chunk wrote
//     are published and marked together.
//   - The deliver-pending sweep (Deliverer.Sweep), the backstop: whatever
//     is still pending a moment after it was written (a Redis outage, a
//     gateway that crashed between commit and publish, a lost mark) is
//     published and marked, oldest first.
//
// Marks are written without waiting for the disk (db.MarkManySentRelaxed):
// a mark lost in a crash leaves the message pending, and the sweep
// publishes it again, which clients absorb by deduping on id. So a lost
// mark costs a duplicate frame, never a message. Postgres stays the
// source of truth; package fanout, below this one, touches Redis only.
package delivery
