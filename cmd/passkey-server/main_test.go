package main

import (
	"os"
	"testing"
)

// serveChildEnv, set to 1, makes the test binary the server instead of running tests: tests that need
// a real server process (one they can SIGKILL) run os.Args[0] with it, without building the command.
// The server reads its configuration from the rest of the environment, as main does.
const serveChildEnv = "PASSKEY_TEST_SERVE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(serveChildEnv) == "1" {
		os.Exit(run([]string{"serve"}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
