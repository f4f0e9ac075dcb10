package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/uptrace/bun/migrate"
)

// migrationFiles holds one set of SQL migrations per dialect, in migrations/postgres and
// migrations/sqlite. Files are named <14 digits>_<name>.tx.up.sql and .tx.down.sql: ".tx" makes Bun
// run each file in a transaction, so a failed migration leaves no half-made schema behind.
//
//go:embed migrations
var migrationFiles embed.FS

// postgresMigrationLockID is the key of the PostgreSQL advisory lock held while migrating. The
// value is arbitrary but fixed: every instance of the service must use the same one.
const postgresMigrationLockID int64 = 0x706b7365727665 // "pkserve"

// sqliteMigrationLockWait bounds how long MigrateUp waits for another process that migrates the
// same SQLite file.
const sqliteMigrationLockWait = 30 * time.Second

// MigrationState is one migration and whether it has been applied.
type MigrationState struct {
	// Name is the migration's file name without its suffixes, such as "20260101000001_initial_schema".
	Name string
	// Applied reports whether the migration is applied.
	Applied bool
	// AppliedAt is when the migration was applied; zero when it is not.
	AppliedAt time.Time
}

// MigrateUp applies every migration not applied yet. It does nothing when the schema is current,
// and is safe when several instances start at once: they take turns, and all but the first find
// nothing to do.
func (d *DB) MigrateUp(ctx context.Context) error {
	err := d.withMigrator(ctx, func(m *migrate.Migrator) error {
		if _, err := m.Migrate(ctx); err != nil {
			return err
		}
		// River's tables (the webhook queue) come after ours, under the same lock.
		return d.migrateRiver(ctx)
	})
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back the last steps applied migrations, newest first. Rolling back more
// migrations than are applied rolls back all of them.
func (d *DB) MigrateDown(ctx context.Context, steps int) error {
	if steps < 1 {
		return fmt.Errorf("migrate down: steps must be at least 1, got %d", steps)
	}
	err := d.withMigrator(ctx, func(m *migrate.Migrator) error {
		all, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return fmt.Errorf("read migration status: %w", err)
		}
		applied := all.Applied() // newest first
		for i := 0; i < steps && i < len(applied); i++ {
			mig := &applied[i]
			if mig.Down == nil {
				return fmt.Errorf("%s: no down migration", mig)
			}
			if err := mig.Down(ctx, m, mig); err != nil {
				return fmt.Errorf("%s: down: %w", mig, err)
			}
			if err := m.MarkUnapplied(ctx, mig); err != nil {
				return fmt.Errorf("%s: mark unapplied: %w", mig, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// MigrationStatus returns every known migration, oldest first, with whether it is applied.
func (d *DB) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	var states []MigrationState
	err := d.withMigrator(ctx, func(m *migrate.Migrator) error {
		all, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return err
		}
		states = make([]MigrationState, 0, len(all))
		for _, mig := range all {
			s := MigrationState{Name: mig.String(), Applied: mig.IsApplied()}
			if s.Applied {
				s.AppliedAt = mig.MigratedAt.UTC()
			}
			states = append(states, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return states, nil
}

// withMigrator runs fn with a migrator for d's dialect while holding the migration lock, so that two
// instances never migrate at the same time. The migrator's own tables are created first, if needed.
func (d *DB) withMigrator(ctx context.Context, fn func(m *migrate.Migrator) error) error {
	files, err := fs.Sub(migrationFiles, "migrations/"+d.dialect)
	if err != nil {
		return fmt.Errorf("read embedded migrations: %w", err)
	}
	migrations := migrate.NewMigrations()
	if err := migrations.Discover(files); err != nil {
		return fmt.Errorf("read embedded migrations: %w", err)
	}
	// Mark a migration applied only once it succeeded: a failed migration is retried at next start.
	m := migrate.NewMigrator(d.bun, migrations, migrate.WithMarkAppliedOnSuccess(true))

	if d.dialect == DialectPostgres {
		return d.withPostgresLock(ctx, func() error {
			if err := m.Init(ctx); err != nil {
				return fmt.Errorf("create migration tables: %w", err)
			}
			return fn(m)
		})
	}

	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("create migration tables: %w", err)
	}
	return withSQLiteLock(ctx, m, func() error { return fn(m) })
}

// withPostgresLock runs fn while holding a session-level PostgreSQL advisory lock. A second instance
// waits in pg_advisory_lock until the first is done. PostgreSQL releases the lock when the session
// ends, so a crashed instance cannot leave it behind (unlike a lock row in a table).
func (d *DB) withPostgresLock(ctx context.Context, fn func() error) (err error) {
	conn, err := d.bun.Conn(ctx)
	if err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", postgresMigrationLockID); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		_, unlockErr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", postgresMigrationLockID)
		if unlockErr != nil && err == nil {
			err = fmt.Errorf("release migration lock: %w", unlockErr)
		}
	}()
	return fn()
}

// withSQLiteLock runs fn while holding Bun's migration lock (a row in bun_migration_locks), waiting
// for another process that holds it for up to sqliteMigrationLockWait. Within one process the single
// SQLite connection already serialises everything; the lock matters when two processes share a file.
func withSQLiteLock(ctx context.Context, m *migrate.Migrator, fn func() error) (err error) {
	if err := lockSQLiteMigrations(ctx, m); err != nil {
		return err
	}
	defer func() {
		// Unlock even when ctx was cancelled: a lock left behind blocks every later start.
		if unlockErr := m.Unlock(context.WithoutCancel(ctx)); unlockErr != nil && err == nil {
			err = fmt.Errorf("release migration lock: %w", unlockErr)
		}
	}()
	return fn()
}

// lockSQLiteMigrations takes Bun's migration lock, retrying while another process holds it.
func lockSQLiteMigrations(ctx context.Context, m *migrate.Migrator) error {
	deadline := time.Now().Add(sqliteMigrationLockWait)
	for {
		err := m.Lock(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(translate(err), errUniqueViolation) {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if time.Now().After(deadline) {
			return errors.New("take migration lock: another process has been migrating this SQLite database for " +
				sqliteMigrationLockWait.String() + "; if no other process runs, a crashed one left its lock: " +
				"delete the row of bun_migration_locks")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("take migration lock: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
