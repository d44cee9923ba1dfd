package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// BeginInsertMessage begins a transaction on conn and stores m in it as
// InsertMessage does, with the BEGIN in the same round trip as the insert:
// one round trip where pgx's Begin then InsertMessage take two. conn must
// not be in a transaction.
//
// On success the caller owns the returned transaction and must commit or
// roll it back (Rollback after Commit returns pgx.ErrTxClosed, so a
// deferred Rollback is safe); conn serves nothing else until then. On
// error nothing is written and the transaction is already rolled back.
func BeginInsertMessage(ctx context.Context, conn *pgx.Conn, m NewMessage) (pgx.Tx, InsertedMessage, error) {
	if s := conn.PgConn().TxStatus(); s != 'I' {
		return nil, InsertedMessage{}, fmt.Errorf("beginning transaction: the connection is already in one (status %q)", s)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	queueInsertMessage(b, m)
	br := conn.SendBatch(ctx, b)
	tx := &pipelinedTx{conn: conn}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		tx.abandon(ctx)
		return nil, InsertedMessage{}, fmt.Errorf("beginning transaction: %w", err)
	}
	ins, err := readInsertMessage(br)
	if err != nil {
		tx.abandon(ctx)
		return nil, InsertedMessage{}, err
	}
	return tx, ins, nil
}

// pipelinedTx is a pgx.Tx whose BEGIN was sent in a batch with its first
// statements (BeginInsertMessage). It behaves as pgx's own transaction
// (Commit and Rollback end it once; statements after the end fail with
// pgx.ErrTxClosed) except that it has no nested transactions (Begin) and
// no large objects: the outbox, its only user, needs neither.
type pipelinedTx struct {
	conn   *pgx.Conn
	closed bool
}

// errNested is Begin's answer on a pipelinedTx.
var errNested = errors.New("db: a transaction begun by BeginInsertMessage has no nested transactions")

var _ pgx.Tx = (*pipelinedTx)(nil)

// abandon rolls back after a failed BeginInsertMessage. A connection left
// in a transaction, or that cannot say, is closed: its pool then discards
// it rather than hand it out mid-transaction.
func (t *pipelinedTx) abandon(ctx context.Context) {
	t.closed = true
	if t.conn.PgConn().TxStatus() == 'I' {
		return
	}
	if _, err := t.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
		_ = t.conn.Close(context.WithoutCancel(ctx))
	}
}

func (t *pipelinedTx) Begin(context.Context) (pgx.Tx, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	return nil, errNested
}

func (t *pipelinedTx) Commit(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	tag, err := t.conn.Exec(ctx, "COMMIT")
	if err != nil {
		if t.conn.PgConn().TxStatus() != 'I' {
			_ = t.conn.Close(context.WithoutCancel(ctx))
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		// The transaction had failed: the server rolled it back.
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (t *pipelinedTx) Rollback(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	if _, err := t.conn.Exec(ctx, "ROLLBACK"); err != nil {
		// The connection's state is unknown: close it.
		_ = t.conn.Close(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

func (t *pipelinedTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if t.closed {
		return 0, pgx.ErrTxClosed
	}
	return t.conn.CopyFrom(ctx, table, columns, src)
}

func (t *pipelinedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.closed {
		return closedBatch{}
	}
	return t.conn.SendBatch(ctx, b)
}

func (t *pipelinedTx) LargeObjects() pgx.LargeObjects {
	panic("db: large objects are not supported in a transaction begun by BeginInsertMessage")
}

func (t *pipelinedTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	return t.conn.Prepare(ctx, name, sql)
}

func (t *pipelinedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.closed {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	return t.conn.Exec(ctx, sql, args...)
}

func (t *pipelinedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	return t.conn.Query(ctx, sql, args...)
}

func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.closed {
		return closedRow{}
	}
	return t.conn.QueryRow(ctx, sql, args...)
}

func (t *pipelinedTx) Conn() *pgx.Conn { return t.conn }

// closedRow and closedBatch answer statements on an ended transaction.
type closedRow struct{}

func (closedRow) Scan(...any) error { return pgx.ErrTxClosed }

type closedBatch struct{}

func (closedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, pgx.ErrTxClosed }
func (closedBatch) Query() (pgx.Rows, error)         { return nil, pgx.ErrTxClosed }
func (closedBatch) QueryRow() pgx.Row                { return closedRow{} }
func (closedBatch) Close() error                     { return pgx.ErrTxClosed }
func (closedBatch) Tx() pgx.Tx                       { return nil }
