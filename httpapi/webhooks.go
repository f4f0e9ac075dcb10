package httpapi

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	passkey "github.com/passkey-server/passkey-server"
	"github.com/passkey-server/passkey-server/webhooks"
)

// WebhookDTO is a webhook endpoint on the wire; Secret is set only in the answer that made it (or
// rotated it).
type WebhookDTO struct {
	ID             uuid.UUID `json:"id"`
	URL            string    `json:"url"`
	Events         []string  `json:"events"`
	Description    string    `json:"description"`
	Enabled        bool      `json:"enabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	Secret         string    `json:"secret,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func webhookDTO(ep webhooks.Endpoint, secret string) WebhookDTO {
	return WebhookDTO{ID: ep.ID, URL: ep.URL, Events: ep.Events, Description: ep.Description, Enabled: ep.Enabled,
		DisabledReason: ep.DisabledReason, Secret: secret, CreatedAt: ep.CreatedAt, UpdatedAt: ep.UpdatedAt}
}

// WebhookDeliveryDTO is a delivery on the wire, its payload as the JSON that was sent.
type WebhookDeliveryDTO struct {
	ID             uuid.UUID       `json:"id"`
	WebhookID      uuid.UUID       `json:"webhook_id"`
	EventType      string          `json:"event_type"`
	Status         string          `json:"status"`
	Attempts       int             `json:"attempts"`
	LastStatusCode int             `json:"last_status_code,omitempty"`
	LastError      string          `json:"last_error,omitempty"`
	Payload        json.RawMessage `json:"payload"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

func webhookDeliveryDTO(d webhooks.Delivery) WebhookDeliveryDTO {
	return WebhookDeliveryDTO{ID: d.ID, WebhookID: d.EndpointID, EventType: d.EventType, Status: string(d.Status),
		Attempts: d.Attempts, LastStatusCode: d.LastStatusCode, LastError: d.LastError, Payload: json.RawMessage(d.Payload),
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// WebhookRequest is the body of POST and PATCH /tenants/{tenant_id}/webhooks[/{webhook_id}].
type WebhookRequest struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

func (r WebhookRequest) input() webhooks.Input {
	return webhooks.Input{URL: r.URL, Events: r.Events, Description: r.Description, Enabled: r.Enabled}
}

// webhookIDs parses the tenant and webhook ids of a webhook route.
func webhookIDs(c *fiber.Ctx) (uuid.UUID, uuid.UUID, error) {
	tenantID, err := parseTenantID(c)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	id, err := uuid.Parse(c.Params("webhook_id"))
	if err != nil {
		return uuid.Nil, uuid.Nil, passkey.Invalid("webhook_id must be a valid uuid")
	}
	return tenantID, id, nil
}

func (s *server) createWebhook(c *fiber.Ctx) error {
	tenantID, err := parseTenantID(c)
	if err != nil {
		return err
	}
	var req WebhookRequest
	if err := decodeStrictJSON(c, &req); err != nil {
		return err
	}
	ep, secret, err := s.Webhooks.Create(c.UserContext(), tenantID, req.input())
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(webhookDTO(ep, secret))
}

func (s *server) listWebhooks(c *fiber.Ctx) error {
	tenantID, err := parseTenantID(c)
	if err != nil {
		return err
	}
	eps, err := s.Webhooks.List(c.UserContext(), tenantID)
	if err != nil {
		return err
	}
	out := make([]WebhookDTO, len(eps))
	for i, ep := range eps {
		out[i] = webhookDTO(ep, "")
	}
	return c.JSON(out)
}

func (s *server) getWebhook(c *fiber.Ctx) error {
	tenantID, id, err := webhookIDs(c)
	if err != nil {
		return err
	}
	ep, err := s.Webhooks.Get(c.UserContext(), tenantID, id)
	if err != nil {
		return err
	}
	return c.JSON(webhookDTO(ep, ""))
}

func (s *server) updateWebhook(c *fiber.Ctx) error {
	tenantID, id, err := webhookIDs(c)
	if err != nil {
		return err
	}
	var req WebhookRequest
	if err := decodeStrictJSON(c, &req); err != nil {
		return err
	}
	ep, err := s.Webhooks.Update(c.UserContext(), tenantID, id, req.input())
	if err != nil {
		return err
	}
	return c.JSON(webhookDTO(ep, ""))
}

func (s *server) deleteWebhook(c *fiber.Ctx) error {
	tenantID, id, err := webhookIDs(c)
	if err != nil {
		return err
	}
	if err := s.Webhooks.Delete(c.UserContext(), tenantID, id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) rotateWebhookSecret(c *fiber.Ctx) error {
	tenantID, id, err := webhookIDs(c)
	if err != nil {
		return err
	}
	secret, err := s.Webhooks.RotateSecret(c.UserContext(), tenantID, id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"secret": secret})
}

// listWebhookDeliveries answers GET …/webhooks/{webhook_id}/deliveries: one page of the endpoint's
// deliveries, newest first, a bare array like every list of the API, with a Link rel="next" header
// while more follow. Query: per_page (as on the other lists: default and most 100 here), status
// (repeated, comma-separated, or both) and cursor.
//
// It pages by cursor, not by page number and X-Total-Count as the other lists do (pageOf): deliveries
// are appended all the time, newest first, so an offset shifts between two requests and page 2
// repeats what page 1 showed (or skips some when retention deletes old ones); an offset is read and
// thrown away row by row; and a total would count up to the retention period's rows of the endpoint
// on every request. A cursor (the last delivery's creation time and id, which never change) continues
// exactly where the page ended, from the index, at the same cost on every page.
func (s *server) listWebhookDeliveries(c *fiber.Ctx) error {
	tenantID, id, err := webhookIDs(c)
	if err != nil {
		return err
	}
	var p passkey.Problems
	var f webhooks.DeliveryFilter
	if raw := c.Query("per_page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			p.Add("per_page must be a number")
		}
		f.Limit = n // zero or below: the default, as on the other lists
	}
	if c.Query("page") != "" {
		p.Add("page is not supported here: follow the Link rel=\"next\" header (cursor)")
	}
	for _, raw := range c.Context().QueryArgs().PeekMulti("status") {
		for _, st := range strings.Split(string(raw), ",") {
			if st = strings.TrimSpace(st); st != "" {
				f.Statuses = append(f.Statuses, webhooks.Status(st)) // string(raw) copied Fiber's buffer
			}
		}
	}
	if raw := c.Query("cursor"); raw != "" {
		cur, err := webhooks.ParseDeliveryCursor(raw)
		if err != nil {
			p.Add("cursor must be the one of a Link rel=\"next\" header of this listing, unchanged")
		} else {
			f.After = &cur
		}
	}
	if err := withRules(p, passkey.ErrInvalidRequest, f.Validate()); err != nil {
		return err
	}
	page, err := s.Webhooks.Deliveries(c.UserContext(), tenantID, id, f)
	if err != nil {
		return err
	}
	out := make([]WebhookDeliveryDTO, len(page.Deliveries))
	for i, d := range page.Deliveries {
		out[i] = webhookDeliveryDTO(d)
	}
	if page.Next != nil {
		perPage := f.Limit
		if perPage <= 0 {
			perPage = webhooks.DefaultDeliveryLimit
		}
		s.setNextLink(c, url.Values{"cursor": {page.Next.String()}, "per_page": {strconv.Itoa(perPage)}})
	}
	return c.JSON(out)
}

func (s *server) redeliverWebhook(c *fiber.Ctx) error {
	tenantID, id, err := webhookIDs(c)
	if err != nil {
		return err
	}
	deliveryID, err := uuid.Parse(c.Params("delivery_id"))
	if err != nil {
		return passkey.Invalid("delivery_id must be a valid uuid")
	}
	d, err := s.Webhooks.Redeliver(c.UserContext(), tenantID, id, deliveryID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(webhookDeliveryDTO(d))
}

func (s *server) testWebhook(c *fiber.Ctx) error {
	tenantID, id, err := webhookIDs(c)
	if err != nil {
		return err
	}
	d, err := s.Webhooks.SendTest(c.UserContext(), tenantID, id)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(webhookDeliveryDTO(d))
}
