//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestEmbeddedDataIsPrivate: in embedded mode the data dir is 0700 and the SQLite files (database,
// -wal, -shm) and secrets are 0600, also when the process's umask is 022 and when a data dir made
// earlier is open to others (issue 12, point 17).
func TestEmbeddedDataIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := []string{"passkey.db", "passkey.db-wal", "passkey.db-shm", "master.key", "admin-token", "dev-tenant.json"}
	check := func(when string) {
		t.Helper()
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: data dir mode %v, %v; want 0700", when, st.Mode().Perm(), err)
		}
		for _, f := range files {
			st, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Errorf("%s: %v", when, err)
				continue
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s has mode %v, want 0600", when, f, st.Mode().Perm())
			}
		}
	}

	// A first start in a dir open to others, with umask 022. The -wal and -shm files exist while the
	// server runs.
	_, _, stop := startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir})
	check("first start")
	stop()

	// A data dir left open by an earlier version: everything readable by others.
	syscall.Umask(0o022)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		// A file the server removed on shutdown (-wal, -shm) comes back, open to others.
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, _, stop = startServer(t, map[string]string{"PASSKEY_DATA_DIR": dir})
	defer stop()
	check("second start")
}
