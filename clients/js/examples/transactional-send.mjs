// In-transaction send from a Node service (node-postgres): the service's own
// write and the message it sends commit together, or neither does.
//
//   DATABASE_URL=postgres://... node examples/transactional-send.mjs [sender-uuid recipient-uuid]
//
// It books an appointment and sends the patient a message about it in one
// transaction (committed), then does the same but rolls back (nothing of it
// is stored), then shows how a refusal reads. Each step prints one JSON
// line. Finally it waits until the runner has delivered the committed
// message (its status leaves "pending").
import { randomUUID } from 'node:crypto';
import pg from 'pg';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('transactional-send: set DATABASE_URL to the msgrunner database');
  process.exit(2);
}
const [clinic = randomUUID(), patient = randomUUID()] = process.argv.slice(2);

const db = new pg.Client({ connectionString: url });
await db.connect();
const print = (step) => console.log(JSON.stringify(step));

// The service's own table.
await db.query(`CREATE TABLE IF NOT EXISTS example_appointments (
  id         uuid        PRIMARY KEY,
  patient_id uuid        NOT NULL,
  at         timestamptz NOT NULL
)`);

// bookAndTell writes the appointment and its message in one transaction.
// The message id is chosen here, so a retry of the whole transaction after
// an error whose outcome is unknown (a lost COMMIT answer) stores nothing
// twice: send_message answers from the stored message.
async function bookAndTell({ at, messageId = randomUUID(), changeOfMind = false }) {
  const appointmentId = randomUUID();
  await db.query('BEGIN');
  try {
    await db.query('INSERT INTO example_appointments (id, patient_id, at) VALUES ($1, $2, $3)',
      [appointmentId, patient, at]);
    const { rows: [sent] } = await db.query(
      `SELECT id, conversation_id, seq, status
         FROM msgrunner.send_message(sender_id => $1, recipient_id => $2, content => $3,
                                     priority => $4, id => $5)`,
      [clinic, patient, `Your appointment is booked for ${at.toISOString()}.`, 'high', messageId]);
    if (changeOfMind) {
      throw new Error('the service decided not to book after all');
    }
    await db.query('COMMIT');
    return { appointmentId, message: sent };
  } catch (err) {
    await db.query('ROLLBACK');
    err.appointmentId = appointmentId;
    err.messageId = messageId;
    throw err;
  }
}

const committed = await bookAndTell({ at: new Date(Date.now() + 86_400_000) });
print({ step: 'committed', appointment_id: committed.appointmentId, message_id: committed.message.id,
  conversation_id: committed.message.conversation_id, seq: Number(committed.message.seq) });

try {
  await bookAndTell({ at: new Date(Date.now() + 2 * 86_400_000), changeOfMind: true });
} catch (err) {
  const { rows: [left] } = await db.query(
    `SELECT (SELECT count(*) FROM example_appointments WHERE id = $1)::int AS appointments,
            (SELECT count(*) FROM messages WHERE id = $2)::int AS messages`, [err.appointmentId, err.messageId]);
  print({ step: 'rolled_back', appointment_id: err.appointmentId, message_id: err.messageId, ...left });
}

// A refusal carries the API's error code: SQLSTATE MR400 with the field in
// err.column, and the message starts with "invalid_field".
await db.query('BEGIN');
try {
  await db.query('SELECT msgrunner.send_message(sender_id => $1, recipient_id => $2, content => $3, priority => $4)',
    [clinic, patient, 'hello', 'urgent']);
} catch (err) {
  print({ step: 'refused', sqlstate: err.code, field: err.column, message: err.message });
} finally {
  await db.query('ROLLBACK');
}

// The runner delivers the committed message (send-message job): wait for it.
const deadline = Date.now() + 30_000;
let status = 'pending';
while (status === 'pending' && Date.now() < deadline) {
  ({ rows: [{ status }] } = await db.query('SELECT status::text FROM messages WHERE id = $1', [committed.message.id]));
  if (status === 'pending') await new Promise((r) => setTimeout(r, 100));
}
print({ step: 'delivered', message_id: committed.message.id, status });
await db.end();
process.exit(status === 'pending' ? 1 : 0);
