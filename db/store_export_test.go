package db

import "github.com/uptrace/bun"

// Hooks for the external tests of this directory (package db_test), which cannot reach unexported
// names. This file is compiled only by go test.

// Translate is translate.
var Translate = translate

// ErrUniqueViolation and ErrForeignKeyViolation are the unexported sentinels.
var (
	ErrUniqueViolation     = errUniqueViolation
	ErrForeignKeyViolation = errForeignKeyViolation
)

// Bun returns the Bun handle of d, for tests that write rows no store writes yet.
func (d *DB) Bun() *bun.DB { return d.bun }
