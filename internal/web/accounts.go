package web

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/truthboard/truthboard/internal/account"
	"github.com/truthboard/truthboard/internal/telemetry"
)

// AccountStore keeps accounts; *store.Store in production.
type AccountStore interface {
	CreateAccount(ctx context.Context, a account.Account) error
	UpdateAccount(ctx context.Context, a account.Account) error
	DeleteAccount(ctx context.Context, id string, at time.Time) (found bool, err error)
}

// accountJSON is an account as the API shows it: never its password or hash.
type accountJSON struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	ChangedAt time.Time `json:"changed_at"`
}

func accountToJSON(a account.Account) accountJSON {
	return accountJSON{ID: a.ID, Username: a.Username, Role: string(a.Role), CreatedAt: a.CreatedAt.UTC(), ChangedAt: a.ChangedAt.UTC()}
}

// routeAccounts adds GET /v1/me for every reader and, with an account store, the admin API of
// accounts: GET and POST /v1/accounts, PATCH and DELETE /v1/accounts/{id}.
func (s *Server) routeAccounts() {
	s.app.Get("/v1/me", s.viewer(), s.getMe)
	if s.opts.Access.AccountStore == nil || s.opts.Access.Accounts == nil {
		return
	}
	g := s.app.Group("/v1/accounts", s.adminOnly(), s.csrfProtect(true))
	g.Get("", s.listAccounts)
	g.Post("", s.createAccount)
	g.Patch("/:id", s.changeAccount)
	g.Delete("/:id", s.deleteAccount)
}

// me is the body of GET /v1/me: who the request's credential is and what it may do.
type me struct {
	// Credential is "session" (of an account), "admin token" (also its bootstrap sign-in) or
	// "display token".
	Credential string `json:"credential"`
	Role       string `json:"role"`
	Username   string `json:"username,omitempty"`
	// CanAdmin tells a page whether to offer the admin page.
	CanAdmin bool `json:"can_admin"`
}

func (s *Server) getMe(c *fiber.Ctx) error {
	cr := s.identify(c, true)
	m := me{Role: cr.role.String(), Username: cr.account.Username, CanAdmin: cr.role == admin}
	switch {
	case cr.viaCookie && cr.account.ID != "":
		m.Credential = "session"
	case cr.role == display:
		m.Credential = "display token"
	default:
		m.Credential = "admin token"
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(m)
}

func (s *Server) listAccounts(c *fiber.Ctx) error {
	// From the cache: this node's view, refreshed after every change made through it.
	all := s.opts.Access.Accounts.All()
	out := make([]accountJSON, 0, len(all))
	for _, a := range all {
		out = append(out, accountToJSON(a))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"accounts": out})
}

// accountRequest is the body of POST /v1/accounts and PATCH /v1/accounts/{id}.
type accountRequest struct {
	Username *string `json:"username"`
	Role     *string `json:"role"`
	Password *string `json:"password"`
}

// decodeAccount reads the body; it has answered a bad one itself when ok is false.
func decodeAccount(c *fiber.Ctx, example string) (req accountRequest, ok bool, err error) {
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, false, c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body must be a JSON object such as " + example + ": " + err.Error()})
	}
	if dec.More() {
		return req, false, c.Status(fiber.StatusBadRequest).JSON(apiError{Error: "the body must be one JSON object such as " + example})
	}
	return req, true, nil
}

// accountFieldError answers a *account.FieldError as 400 naming the field.
func accountFieldError(c *fiber.Ctx, err error) error {
	var fe *account.FieldError
	if errors.As(err, &fe) {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: fe.Error(), Field: fe.Field})
	}
	return err
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) createAccount(c *fiber.Ctx) error {
	req, ok, err := decodeAccount(c, `{"username": "maria.lopez", "role": "viewer", "password": "at least 10 characters"}`)
	if !ok {
		return err
	}
	username := str(req.Username)
	if _, taken := s.opts.Access.Accounts.ByUsername(username); taken {
		return c.Status(fiber.StatusConflict).JSON(fieldError{Error: "username " + username + " is taken: choose another, or change that account with PATCH /v1/accounts/{id}", Field: "username"})
	}
	release, err := s.hashing(c.UserContext())
	if err != nil {
		return s.hashingBusy(c)
	}
	a, err := account.New(username, account.Role(str(req.Role)), str(req.Password), s.now())
	release()
	if err != nil {
		return accountFieldError(c, err)
	}
	if err := s.opts.Access.AccountStore.CreateAccount(c.UserContext(), a); err != nil {
		return s.credentialStoreError(c, err)
	}
	s.refreshAccounts(c.UserContext())
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(accountToJSON(a))
}

// accountOf finds the account of the route's id; it has answered itself when ok is false.
func (s *Server) accountOf(c *fiber.Ctx) (a account.Account, ok bool, err error) {
	id := c.Params("id")
	if !account.ValidID(id) {
		return a, false, c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "id must be the 16 hex digits of an account's id (see GET /v1/accounts)", Field: "id"})
	}
	a, ok = s.opts.Access.Accounts.ByID(id)
	if !ok {
		return a, false, c.Status(fiber.StatusNotFound).JSON(apiError{Error: "no account has the id " + id})
	}
	return a, true, nil
}

// lastAdmin reports whether a is the only admin account: it may not be deleted or demoted, so
// that people can always manage Truthboard without the admin token.
func (s *Server) lastAdmin(a account.Account) bool {
	n, _ := s.opts.Access.Accounts.Admins()
	return a.Role == account.Admin && n <= 1
}

func (s *Server) changeAccount(c *fiber.Ctx) error {
	a, ok, err := s.accountOf(c)
	if !ok {
		return err
	}
	req, ok, err := decodeAccount(c, `{"role": "admin"} or {"password": "at least 10 characters"}`)
	if !ok {
		return err
	}
	if req.Username != nil && *req.Username != a.Username {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "username cannot be changed: create a new account and delete this one", Field: "username"})
	}
	if req.Role == nil && req.Password == nil {
		return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "role or password is required: send what changes", Field: "role"})
	}
	if req.Role != nil {
		r, err := account.ParseRole(*req.Role)
		if err != nil {
			return c.Status(fiber.StatusBadRequest).JSON(fieldError{Error: "role " + err.Error(), Field: "role"})
		}
		if r != account.Admin && s.lastAdmin(a) {
			return c.Status(fiber.StatusConflict).JSON(fieldError{Error: a.Username + " is the only admin account: make another account an admin first", Field: "role"})
		}
		a.Role = r
	}
	if req.Password != nil {
		if err := account.ValidatePassword(a.Username, *req.Password); err != nil {
			return accountFieldError(c, err)
		}
		release, err := s.hashing(c.UserContext())
		if err != nil {
			return s.hashingBusy(c)
		}
		a.PasswordHash = account.HashPassword(*req.Password)
		release()
	}
	// A change ends the account's sessions issued before it (to the second: a session issued
	// in the same second as the change outlives it).
	a.ChangedAt = s.now().UTC().Truncate(time.Second)
	if err := s.opts.Access.AccountStore.UpdateAccount(c.UserContext(), a); err != nil {
		return s.credentialStoreError(c, err)
	}
	s.refreshAccounts(c.UserContext())
	return c.JSON(accountToJSON(a))
}

func (s *Server) deleteAccount(c *fiber.Ctx) error {
	a, ok, err := s.accountOf(c)
	if !ok {
		return err
	}
	if s.lastAdmin(a) {
		return c.Status(fiber.StatusConflict).JSON(fieldError{Error: a.Username + " is the only admin account: make another account an admin first", Field: "id"})
	}
	if _, err := s.opts.Access.AccountStore.DeleteAccount(c.UserContext(), a.ID, s.now()); err != nil {
		return s.credentialStoreError(c, err)
	}
	s.refreshAccounts(c.UserContext())
	return c.SendStatus(fiber.StatusNoContent)
}

// refreshAccounts makes this node see a change at once; the others see it at their next
// refresh.
func (s *Server) refreshAccounts(ctx context.Context) {
	if err := s.opts.Access.Accounts.Refresh(ctx); err != nil {
		s.log.Warn("accounts not refreshed after a change", "err", err)
	}
}

// hashing takes one of the password-hashing slots, waiting at most 5 s; release gives it back.
func (s *Server) hashing(ctx context.Context) (release func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	select {
	case s.hashSlots <- struct{}{}:
		return func() { <-s.hashSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Server) hashingBusy(c *fiber.Ctx) error {
	s.opts.Telemetry.HTTPRefused.WithLabelValues(telemetry.RefusedHashingBusy).Inc()
	c.Set(fiber.HeaderRetryAfter, "5")
	return c.Status(fiber.StatusServiceUnavailable).JSON(apiError{Error: "too many passwords are being checked at once; retry after 5 s"})
}
