// Package migrations holds the database schema as goose migrations, embedded
// so that the binaries can migrate without the source tree.
//
// Version 1 is a Go migration that installs River's own tables through
// rivermigrate at a pinned version (RiverVersion); the rest are SQL files in
// this directory. sqlc reads the same directory as its schema.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverVersion is the River schema version that migration 1 installs. Raise
// it in a new goose migration (never by editing this one) when upgrading
// River requires newer tables.
const RiverVersion = 8

//go:embed *.sql
var sqlFiles embed.FS

// FS returns the embedded SQL migrations.
func FS() fs.FS { return sqlFiles }

// Latest returns the highest migration version: the schema version of a
// fully migrated database.
func Latest() int64 {
	latest := int64(len(GoMigrations()))
	entries, _ := fs.ReadDir(sqlFiles, ".")
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

// GoMigrations returns the migrations written in Go, for goose's
// WithGoMigrations provider option.
func GoMigrations() []*goose.Migration {
	return []*goose.Migration{
		// River's migrations cannot share one transaction (a later one uses
		// an enum value an earlier one adds), so this one runs outside
		// goose's transaction and rivermigrate gives each River version its
		// own. River records what it applied, so a rerun after a failure
		// continues where it stopped.
		goose.NewGoMigration(1,
			&goose.GoFunc{RunDB: riverUp, Mode: goose.TransactionDisabled},
			&goose.GoFunc{RunDB: riverDown, Mode: goose.TransactionDisabled},
		),
	}
}

func riverMigrator(db *sql.DB) (*rivermigrate.Migrator[*sql.Tx], error) {
	m, err := rivermigrate.New(riverdatabasesql.New(db), nil)
	if err != nil {
		return nil, fmt.Errorf("creating river migrator: %w", err)
	}
	return m, nil
}

func riverUp(ctx context.Context, db *sql.DB) error {
	m, err := riverMigrator(db)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{TargetVersion: RiverVersion}); err != nil {
		return fmt.Errorf("migrating river schema up to version %d: %w", RiverVersion, err)
	}
	return nil
}

func riverDown(ctx context.Context, db *sql.DB) error {
	m, err := riverMigrator(db)
	if err != nil {
		return err
	}
	// TargetVersion -1 removes every River migration, tables included.
	if _, err := m.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: -1}); err != nil {
		return fmt.Errorf("migrating river schema down: %w", err)
	}
	return nil
}
