package web

import (
	"bytes"
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
)

// ingestAnswer is the body of POST /v1/events: 202 when events were stored or already were,
// 400 when every event was invalid.
type ingestAnswer struct {
	Accepted   int                `json:"accepted"`
	Duplicates int                `json:"duplicates"`
	Rejected   int                `json:"rejected"`
	Errors     []event.FieldError `json:"errors"`
}

// postEvents takes one object, an array or NDJSON, optionally gzip-encoded, and answers 202 only
// once the valid events are committed in ClickHouse.
func (s *Server) postEvents(c *fiber.Ctx) error {
	size := int64(len(c.Request().Body()))
	if s.inflightBytes.Add(size) > s.opts.MaxInflightBytes && size < s.opts.MaxInflightBytes {
		s.inflightBytes.Add(-size)
		c.Set(fiber.HeaderRetryAfter, "1")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "too many ingest requests at once; nothing of this request was stored, retry after 1 s"})
	}
	defer s.inflightBytes.Add(-size)
	// The raw body: Fiber's c.Body() would gunzip without a size limit (a gzip bomb).
	body, err := event.Decompressed(bytes.NewReader(c.Request().Body()), c.Get(fiber.HeaderContentEncoding), s.opts.Limits.MaxBodyBytes)
	if err != nil {
		code := fiber.StatusBadRequest
		if errors.Is(err, event.ErrUnsupportedEncoding) {
			code = fiber.StatusUnsupportedMediaType
		}
		return c.Status(code).JSON(apiError{Error: err.Error()})
	}
	batch, err := event.Decode(body, c.Get(fiber.HeaderContentType), s.opts.Limits, s.now())
	if err != nil {
		code := fiber.StatusBadRequest
		if errors.Is(err, event.ErrTooLarge) {
			code = fiber.StatusRequestEntityTooLarge
		}
		return c.Status(code).JSON(apiError{Error: err.Error()})
	}
	answer := ingestAnswer{Rejected: batch.Rejected(), Errors: batch.Errors}
	if answer.Errors == nil {
		answer.Errors = []event.FieldError{}
	}
	if len(batch.Events) == 0 {
		if batch.Total == 0 {
			return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body holds no event"})
		}
		return c.Status(fiber.StatusBadRequest).JSON(answer)
	}

	ctx, cancel := context.WithTimeout(c.UserContext(), s.opts.AckTimeout)
	defer cancel()
	res, err := s.writer.Write(ctx, batch.Events)
	if err != nil {
		return s.writeFailed(c, err)
	}
	answer.Accepted, answer.Duplicates = res.Accepted, res.Duplicates
	return c.Status(fiber.StatusAccepted).JSON(answer)
}

// writeFailed answers a request none of whose events were stored.
func (s *Server) writeFailed(c *fiber.Ctx, err error) error {
	var se *ingest.StoreError
	switch {
	case errors.Is(err, ingest.ErrOverloaded):
		c.Set(fiber.HeaderRetryAfter, "1")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "too many events waiting to be stored; nothing of this request was stored, retry after 1 s"})
	case errors.Is(err, ingest.ErrClosed):
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the server is shutting down; nothing of this request was stored, retry after 5 s"})
	case errors.As(err, &se) && se.Unavailable, errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("events not stored", "err", err)
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the database is unavailable; the events were not acknowledged, retry after 5 s (a retry is never counted twice)"})
	}
	return err // 500, logged by the error handler
}
