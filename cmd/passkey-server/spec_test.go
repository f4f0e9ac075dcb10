package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/db/dbtest"
	"github.com/passkey-server/passkey-server/httpapi"
)

var spec struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	spec.once.Do(func() {
		// A tenant's archive (export, import) is NDJSON: text, whose lines the archive tests check.
		openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
		loader := openapi3.NewLoader()
		spec.doc, spec.err = loader.LoadFromFile("../../openapi.yaml")
		if spec.err != nil {
			return
		}
		if spec.err = spec.doc.Validate(context.Background()); spec.err != nil {
			return
		}
		// Match paths on any host: the tests' requests go to example.com. Every path also names its
		// server (public or admin port), for generated clients.
		spec.doc.Servers = nil
		for _, item := range spec.doc.Paths.Map() {
			item.Servers = nil
		}
		spec.router, spec.err = gorillamux.NewRouter(spec.doc)
	})
	if spec.err != nil {
		t.Fatalf("openapi.yaml: %v", spec.err)
	}
	return spec.doc, spec.router
}

// checkSpec validates a live response against openapi.yaml: its status must be documented for the
// route and its body must match the schema. Responses of routes the spec does not have (unknown paths)
// must be a documented error body.
func checkSpec(t testing.TB, req *http.Request, resp *http.Response) {
	t.Helper()
	doc, router := loadSpec(t)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if req.Method == http.MethodOptions || req.Method == http.MethodHead || strings.Contains(req.URL.Path, "/_probe") {
		return // preflights, and the test-only probe routes, are not API
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		if resp.StatusCode < 400 {
			t.Fatalf("%s %s answered %d but is not in openapi.yaml", req.Method, req.URL.Path, resp.StatusCode)
		}
		var e httpapi.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil || !slices.Contains(specErrorCodes(doc), e.Code) {
			t.Fatalf("%s %s: error body %s is not a documented Error", req.Method, req.URL.Path, body)
		}
		return
	}
	if resp.StatusCode >= 400 {
		var e httpapi.ErrorBody
		if json.Unmarshal(body, &e) == nil && e.Code != "" && !slices.Contains(globalErrorCodes, e.Code) &&
			!slices.Contains(operationErrorCodes(route.Operation), e.Code) {
			t.Fatalf("%s %s answered error code %q, which its x-error-codes in openapi.yaml do not list", req.Method, route.Path, e.Code)
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s → %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
}

// globalErrorCodes may answer any operation, so x-error-codes leave them out: a failure of the server
// itself, and limits of the HTTP layer.
var globalErrorCodes = []string{"internal_error", "body_too_large", "headers_too_large", "bad_request"}

// operationErrorCodes returns the x-error-codes of an operation: the error codes it can answer beside
// globalErrorCodes.
func operationErrorCodes(op *openapi3.Operation) []string {
	var codes []string
	list, _ := op.Extensions["x-error-codes"].([]any)
	for _, c := range list {
		if s, ok := c.(string); ok {
			codes = append(codes, s)
		}
	}
	return codes
}

// TestEveryOperationListsErrorCodes checks that every operation of openapi.yaml says which error codes
// it answers (x-error-codes; checkSpec holds every live error response to it), and that each is a
// code of the ErrorCode enum.
func TestEveryOperationListsErrorCodes(t *testing.T) {
	doc, _ := loadSpec(t)
	known := specErrorCodes(doc)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if _, ok := op.Extensions["x-error-codes"].([]any); !ok {
				t.Errorf("%s %s has no x-error-codes", method, path)
			}
			for _, c := range operationErrorCodes(op) {
				if !slices.Contains(known, c) {
					t.Errorf("%s %s lists %q, which is not an ErrorCode", method, path, c)
				}
			}
		}
	}
}

func specErrorCodes(doc *openapi3.T) []string {
	var codes []string
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		codes = append(codes, v.(string))
	}
	return codes
}

// TestErrorCodesMatchSpec keeps the error table and openapi.yaml's ErrorCode enum in step.
func TestErrorCodesMatchSpec(t *testing.T) {
	doc, _ := loadSpec(t)
	table := httpapi.ErrorCodes()
	inSpec := specErrorCodes(doc)
	sort.Strings(inSpec)
	if !slices.Equal(table, inSpec) {
		t.Fatalf("error codes differ:\n table: %v\n spec:  %v", table, inSpec)
	}
}

// TestEveryPathNamesItsServer: each path of openapi.yaml names the one server (port) whose app serves
// it, so that a client generated from the spec sends every call to the right port.
func TestEveryPathNamesItsServer(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, dbtest.SQLite(t), newTestSealer(t))
	constraint := regexp.MustCompile(`<[^>]*>`)
	served := func(app *fiber.App) map[string]bool {
		m := map[string]bool{}
		for _, r := range app.GetRoutes() {
			m[r.Method+" "+constraint.ReplaceAllString(r.Path, "")] = true // "/:tenant_id<guid>" is "/:tenant_id"
		}
		return m
	}
	admin, public := served(s.admin), served(s.public)
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	for path, item := range doc.Paths.Map() {
		if len(item.Servers) != 1 {
			t.Errorf("%s names %d servers, want 1", path, len(item.Servers))
			continue
		}
		port := item.Servers[0].Variables["port"].Default
		route := param.ReplaceAllString(path, ":$1")
		for method := range item.Operations() {
			key := method + " " + route
			switch {
			case port == "8001" && !admin[key], port == "8000" && !public[key]:
				t.Errorf("%s %s names the server on port %s, whose app does not serve it", method, path, port)
			}
		}
	}
}
