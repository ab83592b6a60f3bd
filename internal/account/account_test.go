package account

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string with the default parameters", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("the hash contains the password")
	}
	if h2 := HashPassword("correct horse battery"); h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		name, hash, password string
		want                 bool
	}{
		{"right", h, "correct horse battery", true},
		{"wrong", h, "correct horse batterz", false},
		{"empty password", h, "", false},
		{"no hash (unknown user)", "", "correct horse battery", false},
		{"malformed", "$argon2id$v=19$m=x$", "correct horse battery", false},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuu", "correct horse battery", false},
		{"huge memory refused", strings.Replace(h, "m=19456", "m=99999999", 1), "correct horse battery", false},
	} {
		if got := CheckPassword(tc.hash, tc.password); got != tc.want {
			t.Errorf("%s: CheckPassword = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewNamesTheField(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, username, role, password, field, says string
	}{
		{"no username", "", "viewer", "long enough pw", "username", "is required"},
		{"capitals", "Maria", "viewer", "long enough pw", "username", "lower-case"},
		{"space", "maria lopez", "viewer", "long enough pw", "username", "' '"},
		{"too long", strings.Repeat("a", 65), "viewer", "long enough pw", "username", "at most 64"},
		{"role", "maria", "owner", "long enough pw", "role", `"viewer" or "admin"`},
		{"no role", "maria", "", "long enough pw", "role", `(got "")`},
		{"short password", "maria", "viewer", "short", "password", "at least 10"},
		{"long password", "maria", "viewer", strings.Repeat("p", 257), "password", "at most 256"},
		{"password is the username", "maria.lopez", "admin", "Maria.Lopez", "password", "not be the username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.username, Role(tc.role), tc.password, now)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Message, tc.says) {
				t.Errorf("error on %q: %q; want field %q saying %q", fe.Field, fe.Message, tc.field, tc.says)
			}
		})
	}
	a, err := New("maria.lopez", Viewer, "long enough pw", now)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(a.ID) || a.Role != Viewer || !a.CreatedAt.Equal(now) || !CheckPassword(a.PasswordHash, "long enough pw") {
		t.Errorf("new account %+v", a)
	}
}

func TestCache(t *testing.T) {
	now := time.Now()
	maria, _ := New("maria", Viewer, "long enough pw", now)
	ana, _ := New("ana", Admin, "another password", now)
	gone, _ := New("gone", Admin, "another password", now)
	gone.DeletedAt = now
	twin, _ := New("maria", Admin, "twin password!", now.Add(time.Second))
	list := []Account{maria, ana, gone, twin}
	c := NewCache(func(context.Context) ([]Account, error) { return list, nil }, time.Hour, nil)
	if _, loaded := c.Admins(); loaded {
		t.Error("loaded before the first Refresh")
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, ok := c.Authenticate("maria", "long enough pw"); !ok || a.ID != maria.ID {
		t.Errorf("maria's sign-in: %v %v (the oldest account of a username wins)", a.ID, ok)
	}
	if _, ok := c.Authenticate("maria", "twin password!"); ok {
		t.Error("the younger twin account signs in by username")
	}
	if _, ok := c.Authenticate("gone", "another password"); ok {
		t.Error("a deleted account signs in")
	}
	if _, ok := c.Authenticate("nobody", "long enough pw"); ok {
		t.Error("an unknown username signs in")
	}
	if n, loaded := c.Admins(); n != 2 || !loaded {
		t.Errorf("Admins = %d, %v; want 2, true", n, loaded)
	}
	// An outage keeps the accounts it had.
	c.load = func(context.Context) ([]Account, error) { return nil, errors.New("down") }
	if err := c.Refresh(context.Background()); err == nil {
		t.Error("no error from a failed load")
	}
	if _, ok := c.ByID(ana.ID); !ok {
		t.Error("an outage dropped an account")
	}
}
