package web

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/rollup"
)

// FilterValueSource lists the values of the filter dimensions in a window; *rollup.Store in
// production.
type FilterValueSource interface {
	FilterValues(ctx context.Context, from, to time.Time, limit int) (map[string][]rollup.FilterValue, error)
}

// maxFilterValues is the most values of one dimension an answer lists.
const maxFilterValues = 50

// filterValues is the body of GET /v1/filter-values.
type filterValues struct {
	Window string    `json:"window"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Values are, per dimension, its values with events in the window, most events first.
	Values map[string][]rollup.FilterValue `json:"values"`
	// Truncated names the dimensions that had more than maxFilterValues values.
	Truncated []string `json:"truncated"`
}

// getFilterValues answers GET /v1/filter-values?window=…: the values that exist, so a page can
// say "no events for region=North" and offer the others.
func (s *Server) getFilterValues(c *fiber.Ctx) error {
	values, ok, err := queryValues(c)
	if !ok {
		return err
	}
	for name := range values {
		if name != "window" {
			return c.Status(fiber.StatusBadRequest).JSON(paramError{Error: "unknown parameter " + name + ": GET /v1/filter-values takes only window", Param: name})
		}
	}
	if values.Get("window") == "" {
		values.Set("window", "1h")
	}
	q, ok, err := parseQuery(c, values)
	if !ok {
		return err
	}
	q.By = []string{"touchpoint"} // the detail tables hold the filter dimensions
	p := q.Plan(s.now())
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	release, err := s.reading(ctx)
	if err != nil {
		return s.readBusy(c)
	}
	vals, err := s.opts.FilterValues.FilterValues(ctx, p.From, p.To, maxFilterValues)
	release()
	if err != nil {
		return dbError(c, err)
	}
	out := filterValues{Window: q.WindowName, From: p.From, To: p.To, Values: vals, Truncated: []string{}}
	for _, dim := range rollup.FilterDimensions {
		if len(vals[dim]) > maxFilterValues {
			vals[dim] = vals[dim][:maxFilterValues]
			out.Truncated = append(out.Truncated, dim)
		}
	}
	return c.JSON(out)
}

// routeFilterValues adds GET /v1/filter-values for the readers, when a source is set.
func (s *Server) routeFilterValues() {
	if s.opts.FilterValues != nil {
		s.app.Get("/v1/filter-values", s.viewer(), s.getFilterValues)
	}
}
