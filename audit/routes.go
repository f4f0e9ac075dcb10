package audit

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Routes finds the Route of a request: what Middleware records and what the access log counts as a
// ceremony. Build it once with NewRoutes.
type Routes struct {
	byKey map[string]Route
	// patterns holds the same routes split into path segments, by method and segment count, for
	// requests that a group middleware (API key, tenant, rate limit) answered before their route ran.
	patterns map[string][]routePattern
}

type routePattern struct {
	segs     []string // ":name" matches any one segment
	literals int
	route    Route
}

// NewRoutes returns the table of routes, keyed by RouteKey(method, route pattern).
func NewRoutes(routes map[string]Route) *Routes {
	t := &Routes{byKey: make(map[string]Route, len(routes)), patterns: map[string][]routePattern{}}
	for k, r := range routes {
		t.byKey[k] = r
		method, path, _ := strings.Cut(k, " ")
		p := routePattern{segs: splitPath(path), route: r}
		for _, s := range p.segs {
			if !strings.HasPrefix(s, ":") {
				p.literals++
			}
		}
		pk := patternKey(method, len(p.segs))
		t.patterns[pk] = append(t.patterns[pk], p)
	}
	return t
}

// Match returns the route of the request c, after the handlers ran. When a route handler ran,
// c.Route() is its pattern and one map lookup answers. When a group middleware answered first (a
// missing API key on an MFA route, a rate-limited login), c.Route() is that middleware's, so the
// request path is matched against the patterns instead, as Fiber's router would have matched it
// (letter case and a trailing slash ignored); a literal segment beats a parameter, so
// /credentials/login/initialize is the key-scoped route, not a tenant called "credentials".
func (t *Routes) Match(c *fiber.Ctx) (Route, bool) {
	if t == nil {
		return Route{}, false
	}
	if r, ok := t.byKey[RouteKey(c.Method(), c.Route().Path)]; ok {
		return r, true
	}
	segs := splitPath(c.Path())
	best, bestLiterals := Route{}, -1
	for _, p := range t.patterns[patternKey(c.Method(), len(segs))] {
		if p.literals > bestLiterals && p.matches(segs) {
			best, bestLiterals = p.route, p.literals
		}
	}
	return best, bestLiterals >= 0
}

func (p routePattern) matches(segs []string) bool {
	for i, s := range p.segs {
		if strings.HasPrefix(s, ":") {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if !strings.EqualFold(s, segs[i]) {
			return false
		}
	}
	return true
}

func splitPath(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

func patternKey(method string, segments int) string {
	return method + " " + strconv.Itoa(segments)
}
