# Everything CI runs is `make test` (scripts/test.sh).
.PHONY: test run build bench

test:
	scripts/test.sh

run:
	go run ./cmd/passkey-server

# A static binary: no cgo, so SQLite comes from the pure-Go driver.
build:
	CGO_ENABLED=0 go build -trimpath -o passkey-server ./cmd/passkey-server

bench:
	go test -run '^$$' -bench . -benchmem ./...
