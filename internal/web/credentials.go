package web

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/auth"
)

// TokenStore keeps display tokens; *store.Store in production.
type TokenStore interface {
	CreateDisplayToken(ctx context.Context, t auth.DisplayToken) error
	DisplayTokens(ctx context.Context) ([]auth.DisplayToken, error)
	RevokeDisplayToken(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// KeyStore keeps stored ingest keys; *store.Store in production.
type KeyStore interface {
	CreateIngestKey(ctx context.Context, k auth.IngestKey) error
	IngestKeys(ctx context.Context) ([]auth.IngestKey, error)
	RevokeIngestKey(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// credentialAPI is the admin API of one kind of stored credential: POST path creates one,
// GET path lists them, DELETE path/{id} revokes one.
type credentialAPI struct {
	kind    auth.Kind
	path    string // e.g. "/v1/display-tokens"
	list    string // the JSON field of the list, e.g. "display_tokens"
	example string // a name, for messages
	// cache, refreshed after a change so that this node sees it at once; may be nil.
	cache  *auth.Cache
	create func(context.Context, auth.Credential) error
	all    func(context.Context) ([]auth.Credential, error)
	revoke func(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// credentialJSON is a stored credential as the admin API shows it: never its secret or hash.
type credentialJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Token     string     `json:"token,omitempty"` // a display token, only in the answer of its creation
	Key       string     `json:"key,omitempty"`   // an ingest key, likewise
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func toJSON(t auth.Credential) credentialJSON {
	j := credentialJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), Revoked: t.Revoked()}
	if t.Revoked() {
		at := t.RevokedAt.UTC()
		j.RevokedAt = &at
	}
	return j
}

// fieldError is a 400 answer about one field of the request.
type fieldError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// routeCredentials adds the admin APIs of display tokens and stored ingest keys, each when its
// store is set, behind adminOnly and the CSRF check of cookie-authenticated requests.
func (s *Server) routeCredentials() {
	cookieAuth := s.csrfProtect(true)
	if ts := s.opts.Access.TokenStore; ts != nil {
		s.routeCredentialAPI(cookieAuth, credentialAPI{
			kind: auth.DisplayTokenKind, path: "/v1/display-tokens", list: "display_tokens",
			example: "Wall 3", cache: s.opts.Access.DisplayTokens,
			create: ts.CreateDisplayToken, all: ts.DisplayTokens, revoke: ts.RevokeDisplayToken,
		})
	}
	if ks := s.opts.Access.KeyStore; ks != nil {
		s.routeCredentialAPI(cookieAuth, credentialAPI{
			kind: auth.IngestKeyKind, path: "/v1/ingest-keys", list: "ingest_keys",
			example: "web-checkout", cache: s.opts.Access.IngestKeys,
			create: ks.CreateIngestKey, all: ks.IngestKeys, revoke: ks.RevokeIngestKey,
		})
	}
}

// routeCredentialAPI adds the admin API of one kind.
func (s *Server) routeCredentialAPI(csrfCheck fiber.Handler, api credentialAPI) {
	g := s.app.Group(api.path, s.adminOnly(), csrfCheck)
	g.Post("", func(c *fiber.Ctx) error { return s.createCredential(c, api) })
	g.Get("", func(c *fiber.Ctx) error { return s.listCredentials(c, api) })
	g.Delete("/:id", func(c *fiber.Ctx) error { return s.revokeCredential(c, api) })
}

func (s *Server) createCredential(c *fiber.Ctx, api credentialAPI) error {
	var req struct {
		Name *string `json:"name"`
	}
	example := `{"name": "` + api.example + `"}`
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body must be a JSON object such as " + example + ": " + err.Error()})
	}
	if dec.More() {
		return c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body must be one JSON object such as " + example})
	}
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	if err := api.kind.ValidateName(name); err != nil {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "name " + err.Error(), Field: "name"})
	}
	cred, secret := api.kind.New(name, s.now())
	if err := api.create(c.UserContext(), cred); err != nil {
		return s.credentialStoreError(c, err)
	}
	s.refreshCredentials(c.UserContext(), api)
	j := toJSON(cred)
	if api.kind == auth.IngestKeyKind {
		j.Key = secret
	} else {
		j.Token = secret
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(j)
}

func (s *Server) listCredentials(c *fiber.Ctx, api credentialAPI) error {
	all, err := api.all(c.UserContext())
	if err != nil {
		return s.credentialStoreError(c, err)
	}
	out := make([]credentialJSON, 0, len(all))
	for _, t := range all {
		out = append(out, toJSON(t))
	}
	return c.JSON(fiber.Map{api.list: out})
}

func (s *Server) revokeCredential(c *fiber.Ctx, api credentialAPI) error {
	id := c.Params("id")
	if !auth.ValidCredentialID(id) {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "id must be the 16 hex digits of " + api.kind.ANoun() + "'s id (see GET " + api.path + ")", Field: "id"})
	}
	found, err := api.revoke(c.UserContext(), id, s.now())
	if err != nil {
		return s.credentialStoreError(c, err)
	}
	if !found {
		return c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no " + api.kind.Noun + " has the id " + id})
	}
	s.refreshCredentials(c.UserContext(), api)
	return c.SendStatus(fiber.StatusNoContent)
}

// refreshCredentials makes this node see a change at once; the others see it at their next
// refresh. A failure only delays it to the next refresh.
func (s *Server) refreshCredentials(ctx context.Context, api credentialAPI) {
	if api.cache != nil {
		if err := api.cache.Refresh(ctx); err != nil {
			s.log.Warn(api.kind.Noun+"s not refreshed after a change", "err", err)
		}
	}
}

// credentialStoreError answers 503 when the store could not reach its database; any other
// error goes to the error handler (500).
func (s *Server) credentialStoreError(c *fiber.Ctx, err error) error {
	if unavailable(err) || errors.Is(err, context.DeadlineExceeded) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "the database is unavailable, retry after 5 s: " + err.Error()})
	}
	return err
}
