package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// BatchSender sends a pgx.Batch: a *pgxpool.Pool or a *pgx.Conn.
type BatchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// BeginInsertMessage begins a transaction on q and stores m in it as
// InsertMessage does, with the BEGIN in the same round trip as the insert
// (pgx's Batch.BeginTx): one round trip where Begin then InsertMessage
// take two. q must not be in a transaction; a pool keeps the connection
// acquired until the transaction ends.
//
// On success the caller owns the returned transaction and must commit or
// roll it back (Rollback after Commit returns pgx.ErrTxClosed, so a
// deferred Rollback is safe). On error nothing is written and the
// transaction is already over.
func BeginInsertMessage(ctx context.Context, q BatchSender, m NewMessage) (pgx.Tx, InsertedMessage, error) {
	if c, ok := q.(*pgx.Conn); ok && c.PgConn().TxStatus() != 'I' {
		// BEGIN would only warn, and this transaction's commit would
		// commit the caller's.
		return nil, InsertedMessage{}, errInTransaction
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	queueInsertMessage(b, m)
	br := q.SendBatch(ctx, b)
	tx := br.Tx()
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		rollback(ctx, tx) // a no-op when BEGIN itself failed
		return nil, InsertedMessage{}, translate("beginning transaction", err)
	}
	ins, err := readInsertMessage(br, m.RecipientID == uuid.Nil)
	if err != nil {
		rollback(ctx, tx)
		return nil, InsertedMessage{}, err
	}
	return tx, ins, nil
}

// rollback ends tx after a failure, even when ctx is done, within a few
// seconds: a server that stopped answering must not hold the caller.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// errInTransaction is BeginInsertMessage's answer on a connection already
// in a transaction.
var errInTransaction = errors.New("beginning transaction: the connection is already in one")
