package httpapi

import (
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// requestIDLocal is the Fiber local that holds the request's id (the name Fiber's requestid
// middleware used).
const requestIDLocal = "requestid"

// requestID gives every request an id chosen by the server, a random UUID, sent back in X-Request-Id
// and carried by error bodies, the access log and audit events. An X-Request-Id the client sends is
// ignored: Fiber's requestid middleware would adopt it, letting anyone write arbitrary text (log
// lines, another request's id) into the access and audit logs.
func requestID(c *fiber.Ctx) error {
	id := uuid.NewString()
	c.Set(fiber.HeaderXRequestID, id)
	c.Locals(requestIDLocal, id)
	return c.Next()
}
