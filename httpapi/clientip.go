package httpapi

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

type clientIPLocal struct{}

// TrustedProxies is the set of proxies (addresses or CIDR prefixes) whose X-Forwarded-For header is
// believed. Every other peer is the client itself, whatever headers it sends.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies parses a list of IP addresses and CIDR prefixes.
func ParseTrustedProxies(list []string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (t TrustedProxies) trusts(ip string) bool {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Middleware determines the client address of each request (ClientIP). When the peer is a trusted
// proxy, X-Forwarded-For is read from the right, skipping trusted proxies: the first address that is
// not a trusted proxy is the client. Reading from the right matters because a client can put anything
// at the left of the header and proxies append.
func (t TrustedProxies) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		ip := c.Context().RemoteIP().String()
		if len(t) > 0 && t.trusts(ip) {
			hops := forwardedHops(c)
			for i := len(hops) - 1; i >= 0; i-- {
				hop := strings.TrimSpace(hops[i])
				if _, err := netip.ParseAddr(hop); err != nil {
					break // garbage: stop believing the header here
				}
				ip = hop
				if !t.trusts(hop) {
					break
				}
			}
		}
		c.Locals(clientIPLocal{}, ip)
		return c.Next()
	}
}

// forwardedHops returns the addresses of every X-Forwarded-For header line of the request, in order.
// A proxy may append its own line rather than extend the last one (HAProxy's option forwardfor does),
// so reading only the first line would let a client's own line pass for the proxy's.
func forwardedHops(c *fiber.Ctx) []string {
	var hops []string
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(line), ",")...)
	}
	return hops
}

// ClientIP returns the client address the TrustedProxies middleware determined, or the peer address.
func ClientIP(c *fiber.Ctx) string {
	if ip, ok := c.Locals(clientIPLocal{}).(string); ok {
		return ip
	}
	return c.Context().RemoteIP().String()
}
