package web

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/rollup"
)

// paramError is the 400 answer to a bad query parameter.
type paramError struct {
	Error string `json:"error"`
	Param string `json:"param"`
}

// queryValues parses the query string; it has answered the request itself when ok is false.
func queryValues(c *fiber.Ctx) (values url.Values, ok bool, err error) {
	values, err = url.ParseQuery(string(c.Request().URI().QueryString()))
	if err != nil {
		return nil, false, c.Status(fiber.StatusBadRequest).JSON(paramError{Error: "the query string is malformed: " + err.Error()})
	}
	return values, true, nil
}

// parseQuery parses the metrics parameters; it has answered a bad one with 400 itself when ok
// is false.
func parseQuery(c *fiber.Ctx, values url.Values) (q rollup.Query, ok bool, err error) {
	q, err = rollup.ParseQuery(values)
	var pe *rollup.ParamError
	if errors.As(err, &pe) {
		return q, false, c.Status(fiber.StatusBadRequest).JSON(paramError{Error: pe.Error(), Param: pe.Param})
	}
	return q, err == nil, err
}

// dbError answers a failed read: 503 with Retry-After when ClickHouse cannot be reached, 400
// naming by when the answer has more groups than the store reads at once; other errors go to
// the error handler (500).
func dbError(c *fiber.Ctx, err error) error {
	var many interface{ GroupLimit() int }
	if errors.As(err, &many) {
		return c.Status(fiber.StatusBadRequest).JSON(paramError{Param: "by", Error: fmt.Sprintf("parameter by: the answer "+
			"would have more than %d groups; narrow the window or the filters, group by fewer dimensions, or ask format=csv, "+
			"which streams any number of them", many.GroupLimit())})
	}
	if unavailable(err) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the database is unavailable: " + err.Error()})
	}
	return err
}

// rollupQuery parses the parameters and reads the rollups; it has answered the request itself
// when ok is false.
func (s *Server) rollupQuery(c *fiber.Ctx, values url.Values) (q rollup.Query, p rollup.Plan, groups []rollup.Group, ok bool, err error) {
	if q, ok, err = parseQuery(c, values); !ok {
		return q, p, nil, false, err
	}
	p = q.Plan(s.now())
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	release, err := s.reading(ctx)
	if err != nil {
		return q, p, nil, false, s.readBusy(c)
	}
	groups, err = s.db.Rollup(ctx, q, p)
	release()
	if err != nil {
		return q, p, nil, false, dbError(c, err)
	}
	return q, p, groups, true, nil
}

// getMetrics answers GET /v1/metrics: figures per group of the window, from the rollups, as
// JSON or CSV (export.go).
func (s *Server) getMetrics(c *fiber.Ctx) error {
	values, ok, err := queryValues(c)
	if !ok {
		return err
	}
	asCSV, ok, err := answerFormat(c, values)
	if !ok {
		return err
	}
	if asCSV {
		return s.exportMetrics(c, values)
	}
	q, p, groups, ok, err := s.rollupQuery(c, values)
	if !ok {
		return err
	}
	res := rollup.Build(q, p, groups, s.opts.Rules)
	if q.Recovery {
		ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
		defer cancel()
		release, err := s.reading(ctx)
		if err != nil {
			return s.readBusy(c)
		}
		rec, err := s.db.Recovery(ctx, q, p, s.now())
		release()
		if err != nil {
			return dbError(c, err)
		}
		rollup.AttachRecovery(&res, rec, s.opts.Rules)
	}
	return c.JSON(res)
}

// getConsistency answers GET /v1/consistency: the Channel Consistency Index per moment, as JSON
// or CSV.
func (s *Server) getConsistency(c *fiber.Ctx) error {
	values, ok, err := queryValues(c)
	if !ok {
		return err
	}
	asCSV, ok, err := answerFormat(c, values)
	if !ok {
		return err
	}
	for _, p := range []string{"by", "compare", "series", "recovery"} {
		if values.Has(p) {
			return c.Status(fiber.StatusBadRequest).JSON(paramError{Param: p, Error: "parameter " + p +
				": consistency is always per moment and channel over the current window; use window and filters only"})
		}
	}
	values.Set("by", "moment,channel")
	q, p, groups, ok, err := s.rollupQuery(c, values)
	if !ok {
		return err
	}
	res := rollup.BuildConsistency(q, p, groups, s.opts.Rules)
	if asCSV {
		return writeConsistencyCSV(c, &res, s.now())
	}
	return c.JSON(res)
}
