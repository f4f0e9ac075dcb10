package httpapi

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/passkey-server/passkey-server"
)

// pageOf reads the "page" and "per_page" query parameters: page counts from 1 (default 1), per_page
// defaults to passkey.DefaultPerPage and may not exceed passkey.MaxPerPage. Values that are not
// numbers are problems; zero or negative values mean the default, as in Hanko
// (docs/hanko-compatibility.md#pagination).
func pageOf(c *fiber.Ctx, p *passkey.Problems) passkey.Page {
	page := passkey.Page{Number: 1, Size: passkey.DefaultPerPage}
	for _, q := range []struct {
		name string
		dst  *int
	}{{"page", &page.Number}, {"per_page", &page.Size}} {
		raw := c.Query(q.name)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			p.Add("%s must be a number", q.name)
			continue
		}
		if n > 0 {
			*q.dst = n
		}
	}
	if page.Size > passkey.MaxPerPage {
		p.Add("per_page cannot be more than %d", passkey.MaxPerPage)
	}
	return page
}

// setPaginationHeaders writes Hanko's X-Total-Count and Link headers
// (docs/hanko-compatibility.md#pagination): Link has "first" when page is not 1 or is the last page,
// "last" when page is not the last, "next" when page is before the last and "prev" when page is after
// the first. The URLs repeat the request's query with page and per_page set, keys in alphabetical
// order. They start with the configured public URL (Options.PublicURL) on the public API and are
// relative (the path alone) on the admin API: never with the request's Host or X-Forwarded-Host, which
// any client may set, so a response (or a cache of it) cannot be made to link elsewhere.
func (s *server) setPaginationHeaders(c *fiber.Ctx, p passkey.Page, total int) {
	page, perPage := p.Number, p.Size
	last := (total + perPage - 1) / perPage
	if last < 1 {
		last = 1
	}
	query := url.Values{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) { query.Add(string(k), string(v)) })
	path := s.linkBase + escapeLinkPath(c.Path())
	link := func(p int, rel string) string {
		query.Set("page", strconv.Itoa(p))
		query.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<%s?%s>; rel="%s"`, path, query.Encode(), rel)
	}
	var links []string
	if page != 1 || page == last {
		links = append(links, link(1, "first"))
	}
	if page != last {
		links = append(links, link(last, "last"))
	}
	if page < last {
		links = append(links, link(page+1, "next"))
	}
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	c.Set("X-Total-Count", strconv.Itoa(total))
	c.Set("Link", strings.Join(links, ","))
}

// setNextLink writes a Link header with the "next" link of a list paged by cursor: the request's
// path and query with set's parameters replacing theirs, keys in alphabetical order, on the same base
// as setPaginationHeaders' links (never the request's Host or X-Forwarded-Host).
func (s *server) setNextLink(c *fiber.Ctx, set url.Values) {
	query := url.Values{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) { query.Add(string(k), string(v)) })
	for k, v := range set {
		query[k] = v
	}
	c.Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, s.linkBase+escapeLinkPath(c.Path()), query.Encode()))
}

// escapeLinkPath percent-encodes the bytes of a request path that may not appear in a URI (RFC 3986
// §3.3), so that a path such as /T/transaction/a>b cannot end the <URI> of a Link entry early.
func escapeLinkPath(path string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~!$&'()*+,;=:@/%", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}
