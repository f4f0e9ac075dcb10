package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// DefaultPerPage is the page size when a request gives none (Hanko's).
const DefaultPerPage = 20

// MaxPerPage bounds the page size, so one request cannot ask for a whole table.
const MaxPerPage = 1000

// Page reads the "page" and "per_page" query parameters: page counts from 1 (default 1), per_page
// defaults to DefaultPerPage and may not exceed MaxPerPage. Values that are not numbers are an
// ErrInvalidRequest; zero or negative values mean the default, as in Hanko.
func Page(c *fiber.Ctx) (page, perPage int, err error) {
	var p Problems
	page, perPage = 1, DefaultPerPage
	for name, dst := range map[string]*int{"page": &page, "per_page": &perPage} {
		raw := c.Query(name)
		if raw == "" {
			continue
		}
		n, convErr := strconv.Atoi(raw)
		if convErr != nil {
			p.Add("%s must be a number", name)
			continue
		}
		if n > 0 {
			*dst = n
		}
	}
	if perPage > MaxPerPage {
		p.Add("per_page cannot be more than %d", MaxPerPage)
	}
	return page, perPage, p.Err(ErrInvalidRequest)
}

// SetPaginationHeaders writes Hanko's X-Total-Count and Link headers (contract §0.4): Link has "first"
// when page is not 1 or is the last page, "last" when page is not the last, "next" when page is before
// the last and "prev" when page is after the first. The URLs repeat the request's query with page and
// per_page set, keys in alphabetical order.
func SetPaginationHeaders(c *fiber.Ctx, page, perPage, total int) {
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
