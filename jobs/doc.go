// Package jobs defines the contracts of the seven job kinds: their River
// JobArgs, the queue each runs in, and the defaults (worker counts, attempts,
// retry schedule, timeout) carried over from the earlier Bull design.
//
// Args carry references (message ids, batch ids, cleanup parameters), never
// message content, keys or tokens: River stores args as plain JSON and River
// UI shows them. Every args type validates itself; River runs that check on
// every insert through an InsertBegin hook, so invalid args never reach the
// queue, whoever inserts them.
package jobs
