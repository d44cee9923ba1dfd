// Package broadcast sends one message to many recipients, a chunk at a
// time. Recipients are stored in a table, not in job args; each chunk's
// messages, their jobs and the broadcast's cursor commit in one
// transaction, so a crash or retry resumes at the cursor: nobody gets two
// messages, nobody is skipped.
//
// Service.Create checks the request (recipients, content or template) and
// stores the broadcast and its recipients; the batch-send worker then calls
// Service.ProcessChunk until it reports Done, waiting the broadcast's chunk
// delay in between (the worker, not this package, snoozes before its
// timeout and stops on shutdown; the cursor makes either safe).
//
// ProcessChunk is one transaction: it locks the broadcast row, takes the
// next chunk of recipients after the cursor, renders each recipient's
// message (a recipient whose template variables fail gets an error
// outcome and no message), sends the chunk with one bulk outbox call (the
// messages in two statements, their jobs by COPY) inside a savepoint,
// records every recipient's outcome and moves the cursor past the chunk.
// When the bulk send is refused for some recipient (not a participant, an
// encrypted conversation, invalid input), the chunk falls back to one
// savepoint per message, so only the refused recipients fail.
//
// Each recipient's message goes to the direct conversation of sender and
// recipient. With a publisher in Options the chunk's messages are written
// without send-message jobs and published and marked sent right after the
// chunk commits, as the gateway does for a single message; the runner's
// deliver-pending sweep is their backstop. A failed publish is reported in
// the Step, not as an error: the chunk is committed either way.
package broadcast
