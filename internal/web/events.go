package web

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/bufpool"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/ingest"
	"github.com/truthboard/truthboard/internal/telemetry"
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
// once the valid events are durable (synced to the spool, see package ingest).
func (s *Server) postEvents(c *fiber.Ctx) error {
	// Admission by the body's declared size, before it is read: memory stays bounded however
	// many clients send at once. A chunked body (no Content-Length) is counted at the limit.
	max := s.opts.Limits.MaxBodyBytes
	size := int64(c.Request().Header.ContentLength())
	if size > max {
		s.rejected(telemetry.RejectTooLarge, 1)
		return s.bodyTooLarge(c)
	}
	if size < 0 {
		size = max
	}
	// While the drainer is behind, requests are taken in at its pace (ingest.Writer.Pace): the
	// wait comes before the request takes any budget or reads its body, which meanwhile stays
	// in the connection.
	if waited := s.writer.Pace(c.UserContext()); waited > 0 {
		s.opts.Telemetry.IngestPaced.Inc()
		s.opts.Telemetry.IngestPacedSeconds.Add(waited.Seconds())
	}
	// The key's share first, so that a key at its share never takes the budget of the others.
	if s.keyInflight != nil {
		key := c.Locals(tokenKey{}).(string)
		if !s.keyInflight.Add(key, size, s.opts.MaxInflightBytesPerKey) {
			s.rejected(telemetry.RejectKeyInFlight, 1)
			c.Set(fiber.HeaderRetryAfter, "1")
			s.dropBody(c) // more of this key's bodies are what it may not send now
			return c.Status(fiber.StatusTooManyRequests).JSON(apiError{Error: "this ingest key already has " +
				strconv.FormatInt(s.opts.MaxInflightBytesPerKey, 10) + " bytes of requests in flight, its share of the server; " +
				"nothing of this request was stored, retry after 1 s, once its other requests are answered"})
		}
		defer s.keyInflight.Sub(key, size)
	}
	if s.inflightBytes.Add(size) > s.opts.MaxInflightBytes && size < s.opts.MaxInflightBytes {
		s.inflightBytes.Add(-size)
		s.rejected(telemetry.RejectOverloaded, 1)
		c.Set(fiber.HeaderRetryAfter, "1")
		s.discardBody(c)
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "too many ingest requests at once; nothing of this request was stored, retry after 1 s"})
	}
	defer s.inflightBytes.Add(-size)
	raw, fits, err := s.readBody(c, max)
	defer bufpool.Put(raw) // the events share no memory with it
	if isTimeout(err) {
		s.rejected(telemetry.RejectTooSlow, 1)
		c.Context().SetConnectionClose()
		return c.Status(fiber.StatusRequestTimeout).JSON(apiError{Error: s.tooSlowMessage()})
	}
	if err != nil {
		s.rejected(telemetry.RejectBadBody, 1)
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body could not be read: " + err.Error()})
	}
	if !fits {
		s.rejected(telemetry.RejectTooLarge, 1)
		return s.bodyTooLarge(c)
	}
	// The raw body: Fiber's c.Body() would gunzip without a size limit (a gzip bomb).
	batch, err := s.decode(raw, c.Get(fiber.HeaderContentEncoding), c.Get(fiber.HeaderContentType))
	if err != nil {
		code, reason := fiber.StatusBadRequest, telemetry.RejectBadBody
		switch {
		case errors.Is(err, event.ErrUnsupportedEncoding):
			code = fiber.StatusUnsupportedMediaType
		case errors.Is(err, event.ErrTooLarge):
			code, reason = fiber.StatusRequestEntityTooLarge, telemetry.RejectTooLarge
		}
		s.rejected(reason, 1)
		return c.Status(code).JSON(apiError{Error: err.Error()})
	}
	s.rejected(telemetry.RejectInvalid, batch.Rejected())
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

	res, err := s.writer.Write(c.UserContext(), batch.Events)
	if err != nil {
		return s.writeFailed(c, err, len(batch.Events))
	}
	s.opts.Telemetry.EventsAccepted.Add(float64(res.Accepted))
	s.opts.Telemetry.EventsDuplicate.Add(float64(res.Duplicates))
	answer.Accepted, answer.Duplicates = res.Accepted, res.Duplicates
	return c.Status(fiber.StatusAccepted).JSON(answer)
}

// writeFailed answers a request none of whose n valid events could be made durable.
func (s *Server) writeFailed(c *fiber.Ctx, err error, n int) error {
	c.Set(fiber.HeaderRetryAfter, "5")
	switch {
	case errors.Is(err, ingest.ErrSpoolFull):
		s.rejected(telemetry.RejectSpoolFull, n) // counted, not logged: /readyz and the metrics show it
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the server cannot take more events until ClickHouse takes its backlog (its spool is full); nothing of this request was stored, retry after 5 s"})
	case errors.Is(err, ingest.ErrClosed):
		s.rejected(telemetry.RejectShuttingDown, n)
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the server is shutting down; nothing of this request was stored, retry after 5 s"})
	}
	s.rejected(telemetry.RejectUnavailable, n)
	s.log.Error("events not made durable", "err", err)
	return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the events could not be made durable; nothing of this request was stored, retry after 5 s (a retry is never counted twice)"})
}

// rejected counts n events (or one request, when its events are unknown) refused for reason.
func (s *Server) rejected(reason string, n int) {
	if n > 0 {
		s.opts.Telemetry.EventsRejected.WithLabelValues(reason).Add(float64(n))
	}
}

// readBody reads the request body (streamed by fasthttp, see New) up to limit bytes into a
// buffer of bufpool, at most about twice the declared size, so that the in-flight budget still
// bounds the memory of the bodies being read; the caller puts it back once done with it. fits
// is false when the body is longer. A body slower than the minimum upload rate ends in a
// timeout error (isTimeout).
func (s *Server) readBody(c *fiber.Ctx, limit int64) (body []byte, fits bool, err error) {
	stream := s.bodyStream(c)
	if stream == nil { // not streamed (app.Test, or a body already read)
		b := c.Request().Body()
		return append(bufpool.Get(len(b)), b...), int64(len(b)) <= limit, nil
	}
	// Room for the read that finds the end too: ReadFrom wants bytes.MinRead free before each
	// read, and would double a buffer of exactly the body's size to make it.
	buf := bytes.NewBuffer(bufpool.Get(max(0, c.Request().Header.ContentLength()) + bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(stream, limit+1))
	if err != nil {
		bufpool.Put(buf.Bytes())
		return nil, false, err
	}
	return buf.Bytes(), n <= limit, nil
}

// drainLimit is how much of a body over the limit is read and thrown away before the 413, so
// that a client still sending it reads the answer instead of a reset connection.
const drainLimit = 16 << 20

// discardBody reads and throws away the rest of a refused request's body, up to drainLimit,
// through a small buffer: the client, still sending, then reads the answer instead of a reset
// connection, and no memory is held. A longer body closes the connection after the answer.
func (s *Server) discardBody(c *fiber.Ctx) {
	stream := s.bodyStream(c)
	if stream == nil {
		return
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(stream, drainLimit+1)); n > drainLimit || err != nil {
		c.Context().SetConnectionClose()
	}
}

// bodyStream is the request's streamed body, nil when it is not streamed. Under a minimum
// upload rate it is paced: each read from the connection has a deadline by which the body's
// average rate since its start, after the grace period, is still at least the minimum, and
// never later than the server's read timeout. A trickling upload (a few bytes now and then,
// to hold its place in the in-flight budget) then ends in a timeout within seconds instead of
// at the read timeout.
func (s *Server) bodyStream(c *fiber.Ctx) io.Reader {
	stream := c.Context().RequestBodyStream()
	conn := c.Context().Conn()
	if stream == nil || s.opts.MinUploadRate <= 0 || conn == nil {
		return stream
	}
	start := c.Context().Time()
	return &pacedReader{r: stream, conn: conn, start: start.Add(s.opts.UploadGrace),
		rate: float64(s.opts.MinUploadRate), latest: start.Add(readTimeout)}
}

// pacedReader reads a body that must keep up a minimum average rate (bodyStream).
type pacedReader struct {
	r      io.Reader
	conn   net.Conn
	start  time.Time // the grace period's end: from then on the rate counts
	rate   float64   // bytes per second
	latest time.Time // the read timeout: no deadline is later
	n      int64     // bytes read so far
}

func (p *pacedReader) Read(b []byte) (int, error) {
	// Byte n+1 is due when n bytes at the minimum rate are, counted from the grace period's end.
	due := p.start.Add(time.Duration(float64(p.n+1) / p.rate * float64(time.Second)))
	if due.After(p.latest) {
		due = p.latest
	}
	_ = p.conn.SetReadDeadline(due)
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}

// tooSlowMessage says why a slow body was cut.
func (s *Server) tooSlowMessage() string {
	return "the body arrived too slowly: it must come at " + strconv.FormatInt(s.opts.MinUploadRate, 10) +
		" bytes per second or more after its first " + strconv.Itoa(int(s.opts.UploadGrace.Seconds())) +
		" s, and whole within " + strconv.Itoa(int(readTimeout.Seconds())) + " s; nothing of this request was stored, send it again faster or in smaller requests"
}

// bodyTooLarge answers 413 to a body over the limit and closes the connection, whose unread
// rest cannot be told from a next request.
func (s *Server) bodyTooLarge(c *fiber.Ctx) error {
	s.discardBody(c)
	c.Context().SetConnectionClose()
	return c.Status(fiber.StatusRequestEntityTooLarge).JSON(apiError{Error: tooLargeMessage(s.opts.Limits.MaxBodyBytes)})
}

func tooLargeMessage(max int64) string {
	return "the body is larger than " + strconv.FormatInt(max, 10) + " bytes; send fewer events per request"
}

// decode decompresses and decodes an ingest body. Decoding is the CPU-heavy part of a request:
// as many requests decode at a time as there are CPUs but one, and the others wait here,
// taking no CPU. With more requests decoding than CPUs, the Go scheduler shares the CPUs among
// all of them and the drainer, whose share shrinks to a sliver while a burst is taken in:
// ClickHouse then waits for the next insert, and events are acknowledged faster than they are
// stored (docs/benchmarks.md, Ingest). The wait is short and bounded: only admitted bodies (the
// in-flight budget) queue, and each decodes in time bounded by its size.
func (s *Server) decode(raw []byte, encoding, contentType string) (event.Batch, error) {
	s.decoding <- struct{}{}
	defer func() { <-s.decoding }()
	return event.DecodeEncoded(raw, encoding, contentType, s.opts.Limits, s.now())
}
