#!/usr/bin/env bash
# test.sh runs everything CI runs: it makes sure PostgreSQL and Redis answer
# (scripts/services.sh), checks gofmt, runs go vet and the Go tests with the
# race detector, and, when e2e/package.json exists, the browser end-to-end
# tests. It exits non-zero on the first failure.
#
# Environment (defaults shown):
#   PASSKEY_TEST_POSTGRES_URL  postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
#   PASSKEY_TEST_REDIS_URL     redis://127.0.0.1:6379/0
# When either is set, services.sh only checks that it answers.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() {
	printf '\n==> %s\n' "$*"
}

fail() {
	printf '\ntest.sh: FAILED: %s\n' "$*" >&2
	exit 1
}

HAVE_E2E=0
[[ -f e2e/package.json ]] && HAVE_E2E=1

section "services"
# services.sh sees only the URLs the caller set: with none set, it starts or
# installs the local services the defaults below point at.
if [[ "$HAVE_E2E" -eq 1 ]]; then
	bash scripts/services.sh --browser || fail "services (PostgreSQL, Redis, browser tools) are not available"
else
	bash scripts/services.sh || fail "services (PostgreSQL, Redis) are not available"
fi

export PASSKEY_TEST_POSTGRES_URL="${PASSKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
export PASSKEY_TEST_REDIS_URL="${PASSKEY_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
echo "PASSKEY_TEST_POSTGRES_URL=$PASSKEY_TEST_POSTGRES_URL"
echo "PASSKEY_TEST_REDIS_URL=$PASSKEY_TEST_REDIS_URL"

section "go version"
go version

section "gofmt"
# testdata and node_modules hold inputs, not code; go vet skips them too.
if ! unformatted="$(find . \( -name .git -o -name node_modules -o -name testdata \) -prune -o \
	-type f -name '*.go' -print0 | xargs -0 -r gofmt -l)"; then
	fail "gofmt could not read or parse the files named above"
fi
if [[ -n "$unformatted" ]]; then
	echo "These files need gofmt -w:" >&2
	echo "$unformatted" >&2
	fail "gofmt"
fi
echo "ok"

section "go vet ./..."
go vet ./... || fail "go vet"
echo "ok"

section "go test -race -count=1 ./..."
# The race detector needs cgo.
CGO_ENABLED=1 go test -race -count=1 -timeout 30m ./... || fail "go test"

if [[ "$HAVE_E2E" -eq 1 ]]; then
	section "e2e: npm install"
	# Test tools must use Debian's chromium: their own browser downloads fail
	# on a closed network.
	export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1
	export PASSKEY_E2E_CHROMIUM="${PASSKEY_E2E_CHROMIUM:-/usr/bin/chromium}"
	(
		cd e2e || exit 1
		if [[ -f package-lock.json ]]; then
			npm ci --no-audit --no-fund
		else
			npm install --no-audit --no-fund
		fi
	) || fail "e2e npm install"

	section "openapi.yaml: Redocly (recommended) and Spectral (oas) lint"
	(cd e2e && npm run lint:spec) || fail "openapi.yaml lint"

	section "e2e: npm test"
	(cd e2e && npm test) || fail "e2e tests"
fi

section "all tests passed"
