package httpapi

import (
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server/metrics"
)

// observeRequests records every request of the app named app in m (metrics.Metrics.ObserveRequest),
// labelled with its method, route pattern and status.
//
// The route label is the pattern of the route that handled the request (c.Route().Path, e.g.
// "/:tenant_id/login/finalize"), never the raw path, so the number of series stays bounded. Requests
// that no route handled — 404s, and requests that a middleware answered before any route matched, such
// as rejected admin tokens or CORS preflights — are labelled metrics.UnmatchedRoute.
//
// When the rest of the chain returns an error, the middleware hands it to the app's error handler right
// there (as Fiber's logger middleware does) and returns nil, so the status it records is exactly the one
// the client gets and the error table stays the only place mapping errors to statuses. Register it
// after requestid (the error body carries the request id) and before recover, so that recovered panics
// are counted as the 500s they become.
func observeRequests(m *metrics.Metrics, app string) fiber.Handler {
	var endpoints sync.Map // *fiber.Route → bool: whether the route is an endpoint, not a middleware
	return func(c *fiber.Ctx) error {
		start := time.Now()
		if err := c.Next(); err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		route := metrics.UnmatchedRoute
		if r := c.Route(); isEndpoint(&endpoints, c.App(), r) {
			route = r.Path
		}
		m.ObserveRequest(app, c.Method(), route, c.Response().StatusCode(), time.Since(start))
		return nil
	}
}

// isEndpoint reports whether r is a route registered with Get, Post, All and so on, as opposed to a
// middleware registered with Use. After c.Next() returns, c.Route() is the last route that matched: an
// endpoint when one handled the request, else a middleware (the request was a 404 or a middleware
// answered it). Fiber v2 keeps that flag unexported; app.GetRoutes(true) lists the endpoints only, so
// a route is an endpoint when it is one of those: same method, path and handler slice. The answer is
// computed once per route and kept in cache.
func isEndpoint(cache *sync.Map, app *fiber.App, r *fiber.Route) bool {
	if r == nil || len(r.Handlers) == 0 {
		return false
	}
	if v, ok := cache.Load(r); ok {
		return v.(bool)
	}
	found := false
	for _, e := range app.GetRoutes(true) {
		if e.Method == r.Method && e.Path == r.Path && len(e.Handlers) == len(r.Handlers) &&
			&e.Handlers[0] == &r.Handlers[0] {
			found = true
			break
		}
	}
	cache.Store(r, found)
	return found
}
