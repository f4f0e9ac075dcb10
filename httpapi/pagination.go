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

// setPaginationHeaders writes Hanko's X-Total-Count and Link headers (docs/hanko-compatibility.md#pagination): Link has "first"
// when page is not 1 or is the last page, "last" when page is not the last, "next" when page is before
// the last and "prev" when page is after the first. The URLs repeat the request's query with page and
// per_page set, keys in alphabetical order.
func setPaginationHeaders(c *fiber.Ctx, p passkey.Page, total int) {
	page, perPage := p.Number, p.Size
	last := (total + perPage - 1) / perPage
	if last < 1 {
		last = 1
	}
	scheme := "http"
	if c.Protocol() == "https" || strings.EqualFold(c.Get(fiber.HeaderXForwardedProto), "https") {
		scheme = "https"
	}
	query := url.Values{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) { query.Add(string(k), string(v)) })
	link := func(p int, rel string) string {
		query.Set("page", strconv.Itoa(p))
		query.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf(`<%s://%s%s?%s>; rel="%s"`, scheme, c.Hostname(), c.Path(), query.Encode(), rel)
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
