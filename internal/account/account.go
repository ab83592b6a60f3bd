// Package account holds the people who sign in to Truthboard: their accounts, each with a role
// (a viewer reads the dashboards, an admin also manages keys, tokens, accounts and alert
// rules), and their passwords, hashed with argon2id and checked in constant time. It does no
// I/O: the store keeps accounts, and Cache holds the active ones in memory on every node.
package account

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what an account may do.
type Role string

const (
	// Viewer reads: the dashboards, live figures, metrics, CSV exports, filter values, alerts.
	Viewer Role = "viewer"
	// Admin also manages ingest keys, display tokens, accounts, alert rules and silences.
	Admin Role = "admin"
)

// Roles are the valid roles, least rights first.
var Roles = []Role{Viewer, Admin}

// ParseRole reads a role by its name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("must be %q or %q (got %q)", Viewer, Admin, s)
}

// Account is one person's sign-in. Only the argon2id hash of the password is kept.
type Account struct {
	ID       string
	Username string
	Role     Role
	// PasswordHash is the password's argon2id hash in PHC form ("$argon2id$v=19$m=…").
	PasswordHash string
	CreatedAt    time.Time
	// ChangedAt is when the account last changed (role, password); sessions issued before a
	// password change end.
	ChangedAt time.Time
	// DeletedAt is when the account was deleted; zero while it exists.
	DeletedAt time.Time
}

// Deleted reports whether the account was deleted.
func (a Account) Deleted() bool { return !a.DeletedAt.IsZero() }

// NewID returns a random account id: 16 hex digits.
func NewID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no randomness
	}
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form of an account id.
func ValidID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// Limits of usernames and passwords, in characters.
const (
	MaxUsername = 64
	MinPassword = 10
	// MaxPassword bounds the work of hashing what a client sends.
	MaxPassword = 256
)

// FieldError is a problem with one field of an account, in plain words.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Message }

// ValidateUsername checks a username: 1 to 64 of lower-case letters, digits and . _ - @.
func ValidateUsername(u string) error {
	switch n := utf8.RuneCountInString(u); {
	case n == 0:
		return &FieldError{"username", `is required, e.g. "maria.lopez"`}
	case n > MaxUsername:
		return &FieldError{"username", fmt.Sprintf("must be at most %d characters (got %d)", MaxUsername, n)}
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return &FieldError{"username", fmt.Sprintf("may contain only lower-case letters, digits and . _ - @ (found %q)", r)}
		}
	}
	return nil
}

// ValidatePassword checks a new password: 10 to 256 characters, not the username.
func ValidatePassword(username, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return &FieldError{"password", "must be UTF-8 text"}
	case n < MinPassword:
		return &FieldError{"password", fmt.Sprintf("must be at least %d characters (got %d)", MinPassword, n)}
	case n > MaxPassword:
		return &FieldError{"password", fmt.Sprintf("must be at most %d characters (got %d)", MaxPassword, n)}
	case strings.EqualFold(password, username):
		return &FieldError{"password", "must not be the username"}
	}
	return nil
}

// New makes an account after validating its fields; the error is a *FieldError naming the
// field. It hashes the password, which takes tens of milliseconds on purpose.
func New(username string, role Role, password string, now time.Time) (Account, error) {
	if err := ValidateUsername(username); err != nil {
		return Account{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return Account{}, &FieldError{"role", err.Error()}
	}
	if err := ValidatePassword(username, password); err != nil {
		return Account{}, err
	}
	now = now.UTC().Truncate(time.Second)
	return Account{ID: NewID(), Username: username, Role: role, PasswordHash: HashPassword(password),
		CreatedAt: now, ChangedAt: now}, nil
}

// ErrNoSuchAccount is a username or id that no account has.
var ErrNoSuchAccount = errors.New("no such account")
