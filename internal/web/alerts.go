package web

// The alerts API (docs/api.md#alerts): what is pending or firing, the history of state
// changes, acknowledgements, silences and the rules. Readers (viewers, display tokens) read;
// only admins acknowledge, silence and change nothing else.

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/alert"
	"github.com/truthboard/truthboard/internal/alert/evaluator"
)

// Alerting is the alert evaluator as the web edge uses it (internal/alert/evaluator).
type Alerting interface {
	Active() []alert.Alert
	Engine() *alert.Engine
	Acknowledge(ctx context.Context, fingerprint, by string) (alert.Transition, error)
	Silence(ctx context.Context, matchers []alert.Matcher, until time.Time, reason string) (alert.Silence, error)
	Expire(ctx context.Context, id string) (alert.Silence, error)
	ReplaceRules(data []byte) ([]alert.Rule, error)
}

// AlertHistory lists recorded state changes (internal/store).
type AlertHistory interface {
	AlertHistory(ctx context.Context, from, to time.Time, fingerprint string, limit int) ([]alert.Transition, error)
}

// historyLimit is the default and the largest number of rows of one history answer.
const (
	historyDefaultLimit = 100
	historyMaxLimit     = 1000
)

func (s *Server) routeAlerts() {
	al := s.opts.Alerts
	if al == nil {
		return
	}
	readers, admins := s.viewer(), []fiber.Handler{s.adminOnly(), s.csrfProtect(true)}
	s.app.Get("/v1/alerts", readers, func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"alerts": nonNilAlerts(al.Active())})
	})
	s.app.Get("/v1/alerts/history", readers, s.alertHistory)
	s.app.Get("/v1/alert-rules", readers, func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"rules": al.Engine().Rules()})
	})
	s.app.Get("/v1/silences", readers, func(c *fiber.Ctx) error {
		sl := al.Engine().Silences()
		if sl == nil {
			sl = []alert.Silence{}
		}
		return c.JSON(fiber.Map{"silences": sl})
	})
	s.app.Post("/v1/alerts/:fingerprint/acknowledge", append(admins, s.acknowledgeAlert)...)
	s.app.Put("/v1/alert-rules", append(admins, s.replaceAlertRules)...)
	s.app.Post("/v1/silences", append(admins, s.createSilence)...)
	s.app.Delete("/v1/silences/:id", append(admins, s.expireSilence)...)
}

func nonNilAlerts(a []alert.Alert) []alert.Alert {
	if a == nil {
		return []alert.Alert{}
	}
	return a
}

// alertHistory answers GET /v1/alerts/history?from=&to=&fingerprint=&limit=.
func (s *Server) alertHistory(c *fiber.Ctx) error {
	if s.opts.AlertHistory == nil {
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "alert history is not kept on this server"})
	}
	now := s.now().UTC()
	from, to := now.Add(-24*time.Hour), now.Add(time.Minute)
	limit := historyDefaultLimit
	var fingerprint string
	var problem *fieldError
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if problem != nil {
			return
		}
		key, val := string(k), string(v)
		switch key {
		case "from", "to":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				problem = &fieldError{Field: key, Error: key + ": want an RFC 3339 time such as 2026-01-02T15:04:05Z, got " + strconv.Quote(val)}
				return
			}
			if key == "from" {
				from = t
			} else {
				to = t
			}
		case "fingerprint":
			if len(val) == 0 || len(val) > 32 {
				problem = &fieldError{Field: key, Error: "fingerprint: give the alert's fingerprint, as GET /v1/alerts lists it"}
			}
			fingerprint = val
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > historyMaxLimit {
				problem = &fieldError{Field: key, Error: "limit: want a whole number from 1 to " + strconv.Itoa(historyMaxLimit)}
			}
			limit = n
		default:
			problem = &fieldError{Field: key, Error: "unknown parameter " + strconv.Quote(key) + ": use from, to, fingerprint, limit"}
		}
	})
	if problem == nil && !to.After(from) {
		problem = &fieldError{Field: "to", Error: "to must be after from"}
	}
	if problem != nil {
		return c.Status(fiber.StatusBadRequest).JSON(problem)
	}
	ts, err := s.opts.AlertHistory.AlertHistory(c.UserContext(), from, to, fingerprint, limit)
	if err != nil {
		return s.storeError(c, err)
	}
	if ts == nil {
		ts = []alert.Transition{}
	}
	return c.JSON(fiber.Map{"transitions": ts})
}

// acknowledgeAlert answers POST /v1/alerts/:fingerprint/acknowledge {"by": "name"}.
func (s *Server) acknowledgeAlert(c *fiber.Ctx) error {
	var req struct {
		By string `json:"by"`
	}
	if err := strictJSON(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: err.Error()})
	}
	t, err := s.opts.Alerts.Acknowledge(c.UserContext(), c.Params("fingerprint"), req.By)
	var bad *alert.InputError
	switch {
	case errors.Is(err, alert.ErrUnknownAlert):
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: err.Error()})
	case errors.As(err, &bad):
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: bad.Field, Error: err.Error()})
	case err != nil:
		return s.storeError(c, err)
	}
	return c.JSON(t.Alert)
}

// replaceAlertRules answers PUT /v1/alert-rules with the JSON of a rules file (docs/alerts.md).
func (s *Server) replaceAlertRules(c *fiber.Ctx) error {
	rules, err := s.opts.Alerts.ReplaceRules(c.Body())
	var re *alert.RuleError
	switch {
	case errors.Is(err, evaluator.ErrRulesFromFile):
		return c.Status(fiber.StatusConflict).JSON(apiError{Error: err.Error()})
	case errors.As(err, &re):
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: re.Field, Error: err.Error()})
	case errors.Is(err, evaluator.ErrRulesNotKept):
		s.log.Error("alert rules not kept", "err", err)
		return c.Status(fiber.StatusInternalServerError).JSON(apiError{Error: "the rules could not be kept on disk; nothing changed"})
	case err != nil:
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: err.Error()})
	}
	return c.JSON(fiber.Map{"rules": rules})
}

// createSilence answers POST /v1/silences
// {"matchers": [{"name": "channel", "value": "voice"}], "ends_at": "…", "reason": "…"}.
func (s *Server) createSilence(c *fiber.Ctx) error {
	var req struct {
		Matchers []alert.Matcher `json:"matchers"`
		EndsAt   time.Time       `json:"ends_at"`
		Reason   string          `json:"reason"`
	}
	if err := strictJSON(c.Body(), &req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: err.Error()})
	}
	sl, err := s.opts.Alerts.Silence(c.UserContext(), req.Matchers, req.EndsAt, req.Reason)
	var bad *alert.InputError
	switch {
	case errors.As(err, &bad):
		// The field to fix, named as in the request: matchers[0].name, ends_at, reason…
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: bad.Field, Error: err.Error()})
	case err != nil && sl.ID == "": // too many silences in force
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: err.Error()})
	case err != nil:
		return s.storeError(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(sl)
}

// expireSilence answers DELETE /v1/silences/:id.
func (s *Server) expireSilence(c *fiber.Ctx) error {
	sl, err := s.opts.Alerts.Expire(c.UserContext(), c.Params("id"))
	switch {
	case errors.Is(err, alert.ErrUnknownSilence):
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: err.Error()})
	case err != nil:
		return s.storeError(c, err)
	}
	return c.JSON(sl)
}

// strictJSON decodes one JSON object into v, refusing unknown fields and trailing data.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("the body is not the expected JSON object: " + err.Error())
	}
	if dec.More() {
		return errors.New("the body has data after its JSON object")
	}
	return nil
}

// storeError answers a failure of ClickHouse: 503 with Retry-After when it is unreachable,
// else 500.
func (s *Server) storeError(c *fiber.Ctx, err error) error {
	if unavailable(err) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the database is unavailable: " + err.Error()})
	}
	s.log.Error("alerts request failed", "path", c.Path(), "err", err)
	return c.Status(fiber.StatusInternalServerError).JSON(apiError{Error: "internal error; see the server's log"})
}
