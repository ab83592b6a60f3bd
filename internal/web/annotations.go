package web

// The annotations API (docs/api.md#annotations): marks and regions on the trend charts, with
// Grafana's fields. Readers (viewers, display tokens) list them and read their impact; only
// admins create, change and delete them, at a bounded rate.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/quota"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// AnnotationStore keeps annotations; *store.Store in production.
type AnnotationStore interface {
	WriteAnnotation(ctx context.Context, a annotation.Annotation, version time.Time, deleted bool) error
	Annotation(ctx context.Context, id string) (annotation.Annotation, bool, error)
	Annotations(ctx context.Context, f annotation.Filter) ([]annotation.Annotation, error)
}

// AnnotationOptions are the settings of the annotations API.
type AnnotationOptions struct {
	// Store keeps them; nil leaves the routes out.
	Store AnnotationStore
	// Cache, when set, is refreshed after every change, so that this node's screens show it at
	// their next tick (the other nodes' caches reload by themselves).
	Cache interface {
		Refresh(ctx context.Context) error
	}
	// PerMinute is how many annotations one credential may create, change or delete per minute,
	// in a burst (default 60). It bounds the rows one credential can add to the table.
	PerMinute int
}

// annotationWriters are the credentials remembered by the write limit at most: only admins
// write, so there are few.
const annotationWriters = 1000

// impactWindows are the windows ?window= of an impact may take, for a mark.
var impactWindows = []string{"5m", "15m", "1h", "24h"}

func (s *Server) routeAnnotations() {
	o := s.opts.Annotations
	if o.Store == nil {
		return
	}
	if o.PerMinute <= 0 {
		o.PerMinute = 60
	}
	s.annotationWrites = quota.NewBuckets(float64(o.PerMinute)/60, o.PerMinute, annotationWriters)
	readers, admins := s.viewer(), []fiber.Handler{s.adminOnly(), s.csrfProtect(true), s.annotationRate}
	// The list also hands a signed-in browser its CSRF cookie, which the drill-down's form sends
	// back with a new annotation.
	s.app.Get("/v1/annotations", readers, s.csrfProtect(true), s.listAnnotations)
	s.app.Get("/v1/annotations/:id", readers, s.getAnnotation)
	s.app.Get("/v1/annotations/:id/impact", readers, s.annotationImpact)
	s.app.Post("/v1/annotations", append(admins, s.createAnnotation)...)
	s.app.Patch("/v1/annotations/:id", append(admins, s.patchAnnotation)...)
	s.app.Delete("/v1/annotations/:id", append(admins, s.deleteAnnotation)...)
}

// annotationRate refuses a write past the credential's rate with 429. Every admin (the token
// and the sessions) is one credential.
func (s *Server) annotationRate(c *fiber.Ctx) error {
	if !s.annotationWrites.Take("admin", s.now()) {
		secs := retryAfter(max(s.annotationWrites.Wait("admin", s.now()), time.Second))
		s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedAnnotationRate).Inc()
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		return c.Status(fiber.StatusTooManyRequests).JSON(apiError{Error: "more than " + strconv.Itoa(s.opts.Annotations.PerMinute) +
			" annotation changes per minute from this credential; retry after " + strconv.Itoa(secs) + " s"})
	}
	return c.Next()
}

func (s *Server) createAnnotation(c *fiber.Ctx) error {
	now := s.now()
	a, err := annotation.Decode(c.Body(), nil, now)
	if err != nil {
		return annotationInputError(c, err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	a.ID, a.Created, a.Updated = hex.EncodeToString(id[:]), now.UnixMilli(), now.UnixMilli()
	if err := s.writeAnnotation(c.UserContext(), a, now, false); err != nil {
		return s.storeError(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}

func (s *Server) patchAnnotation(c *fiber.Ctx) error {
	old, ok, err := s.findAnnotation(c)
	if !ok {
		return err
	}
	now := s.now()
	a, err := annotation.Decode(c.Body(), &old, now)
	if err != nil {
		return annotationInputError(c, err)
	}
	// The version orders the writes: never behind the one read, whatever the clocks of nodes.
	version := later(now, old.Updated)
	a.Updated = version.UnixMilli()
	if err := s.writeAnnotation(c.UserContext(), a, version, false); err != nil {
		return s.storeError(c, err)
	}
	return c.JSON(a)
}

func (s *Server) deleteAnnotation(c *fiber.Ctx) error {
	a, ok, err := s.findAnnotation(c)
	if !ok {
		return err
	}
	if err := s.writeAnnotation(c.UserContext(), a, later(s.now(), a.Updated), true); err != nil {
		return s.storeError(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// later is now, or just after the write at updatedMs when now is not after it.
func later(now time.Time, updatedMs int64) time.Time {
	if prev := time.UnixMilli(updatedMs); !now.After(prev) {
		return prev.Add(time.Millisecond)
	}
	return now
}

// writeAnnotation stores a and refreshes this node's cache.
func (s *Server) writeAnnotation(ctx context.Context, a annotation.Annotation, version time.Time, deleted bool) error {
	if err := s.opts.Annotations.Store.WriteAnnotation(ctx, a, version, deleted); err != nil {
		return err
	}
	if cache := s.opts.Annotations.Cache; cache != nil {
		if err := cache.Refresh(ctx); err != nil {
			s.log.Warn("annotations not refreshed after a change", "err", err)
		}
	}
	return nil
}

// findAnnotation reads the annotation of the :id parameter. When ok is false the answer is
// written (400, 404, 503) and err is what the handler returns.
func (s *Server) findAnnotation(c *fiber.Ctx) (a annotation.Annotation, ok bool, err error) {
	id := c.Params("id")
	if b, herr := hex.DecodeString(id); herr != nil || len(b) != 8 {
		return a, false, c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: "id",
			Error: "id: want the 16 hex digits of an annotation's id, as GET /v1/annotations lists them"})
	}
	a, found, err := s.opts.Annotations.Store.Annotation(c.UserContext(), id)
	switch {
	case err != nil:
		return a, false, s.storeError(c, err)
	case !found:
		return a, false, c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no annotation has the id " + id + " (or it was deleted)"})
	}
	return a, true, nil
}

func (s *Server) getAnnotation(c *fiber.Ctx) error {
	a, ok, err := s.findAnnotation(c)
	if !ok {
		return err
	}
	return c.JSON(a)
}

// annotationInputError answers bad input with 400 and the field to fix.
func annotationInputError(c *fiber.Ctx, err error) error {
	var fe *annotation.FieldError
	if errors.As(err, &fe) {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Field: fe.Field, Error: fe.Error()})
	}
	return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: err.Error()})
}

// annotationParams are the parameters of GET /v1/annotations.
var annotationParams = []string{"from", "to", "tags", "moment", "channel", "limit"}

// listAnnotations answers GET /v1/annotations?from=&to=&tags=&moment=&channel=&limit=.
func (s *Server) listAnnotations(c *fiber.Ctx) error {
	now := s.now().UTC()
	f := annotation.Filter{From: now.Add(-annotation.Horizon), To: now.Add(annotation.MaxFuture), Limit: annotation.DefaultList}
	var problem error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if problem != nil {
			return
		}
		key, val := string(k), string(v)
		var err error
		switch key {
		case "from":
			f.From, err = annotation.ParseTime(key, val)
		case "to":
			f.To, err = annotation.ParseTime(key, val)
		case "tags", "tag":
			for _, t := range strings.Split(val, ",") {
				if t = strings.TrimSpace(t); t != "" && !slices.Contains(f.Tags, t) {
					f.Tags = append(f.Tags, t)
				}
			}
			if len(f.Tags) > annotation.MaxTags {
				err = &annotation.FieldError{Field: "tags", Message: "more than " + strconv.Itoa(annotation.MaxTags) + " tags; an annotation has at most that many"}
			}
		case "moment":
			f.Moment, err = enumParam(key, val, event.Moments)
		case "channel":
			f.Channel, err = enumParam(key, val, event.Channels)
		case "limit":
			n, aerr := strconv.Atoi(val)
			if aerr != nil || n < 1 || n > annotation.MaxList {
				err = &annotation.FieldError{Field: key, Message: "want a whole number from 1 to " + strconv.Itoa(annotation.MaxList)}
			}
			f.Limit = n
		default:
			err = &annotation.FieldError{Field: key, Message: "unknown parameter; use " + strings.Join(annotationParams, ", ")}
		}
		problem = err
	})
	if problem == nil && f.To.Before(f.From) {
		problem = &annotation.FieldError{Field: "to", Message: "is before from"}
	}
	if problem != nil {
		return annotationInputError(c, problem)
	}
	list, err := s.opts.Annotations.Store.Annotations(c.UserContext(), f)
	if err != nil {
		return s.storeError(c, err)
	}
	return c.JSON(list)
}

func enumParam(key, val string, values []string) (string, error) {
	if !slices.Contains(values, val) {
		return "", &annotation.FieldError{Field: key, Message: "unknown " + key + " " + strconv.Quote(val) + ": use one of " + strings.Join(values, ", ")}
	}
	return val, nil
}

// annotationImpact answers GET /v1/annotations/:id/impact?window=: the figures of the
// annotation's scope before it against during and after it (annotation.Impact).
func (s *Server) annotationImpact(c *fiber.Ctx) error {
	length := time.Hour
	var problem error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		key, val := string(k), string(v)
		switch {
		case problem != nil:
		case key == "window" && slices.Contains(impactWindows, val):
			length, _ = time.ParseDuration(strings.Replace(val, "24h", "1440m", 1))
		case key == "window":
			problem = &annotation.FieldError{Field: key, Message: "use one of " + strings.Join(impactWindows, ", ") + " (the length compared before and after a mark; a region is compared over its own length)"}
		default:
			problem = &annotation.FieldError{Field: key, Message: "unknown parameter; use window"}
		}
	})
	if problem != nil {
		return annotationInputError(c, problem)
	}
	a, ok, err := s.findAnnotation(c)
	if !ok {
		return err
	}
	now := s.now().UTC()
	// The minute overview keeps as long as the raw events; older windows read the hourly one.
	table, step := "overview_1m", time.Minute
	if ret := s.opts.Limits.Retention; ret > 0 && a.Start().Add(-max(length, a.End().Sub(a.Start()))).Before(now.Add(-ret)) {
		table, step = "overview_1h", time.Hour
	}
	ws := annotation.Periods(&a, length, step, now)
	q := rollup.Query{WithoutWait: true}
	if a.Moment != "" {
		q.Filters.Moment = []string{a.Moment}
	}
	if a.Channel != "" {
		q.Filters.Channel = []string{a.Channel}
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	counts := make([]rollup.Counts, len(ws))
	for i, w := range ws {
		if !w.To.After(w.From) {
			continue // not begun yet
		}
		release, err := s.reading(ctx)
		if err != nil {
			return s.readBusy(c)
		}
		to := w.To
		if !w.Complete { // the step that is filling now, whole
			to = to.Truncate(step).Add(step)
		}
		groups, err := s.db.Rollup(ctx, q, rollup.Plan{Table: table, Resolution: step, From: w.From, To: to, Now: now})
		release()
		if err != nil {
			return dbError(c, err)
		}
		for j := range groups {
			counts[i].Add(&groups[j].Counts)
		}
	}
	return c.JSON(annotation.BuildImpact(&a, ws, counts, s.opts.Rules))
}
