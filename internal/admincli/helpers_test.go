package admincli

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// dropDatabase drops the database named in target, connecting through via.
func dropDatabase(via, target string) error {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(target)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, via)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{cfg.Database}.Sanitize()+" WITH (FORCE)")
	return err
}
