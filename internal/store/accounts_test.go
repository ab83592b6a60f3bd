package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/account"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

func TestAccounts(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	created := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	maria, err := account.New("maria", account.Viewer, "first password", created)
	if err != nil {
		t.Fatal(err)
	}
	ana, _ := account.New("ana", account.Admin, "second password", created.Add(time.Minute))
	for _, a := range []account.Account{maria, ana} {
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// Two changes within one second keep their order: the last one wins.
	promoted := maria
	promoted.Role = account.Admin
	promoted.ChangedAt = created.Add(time.Hour)
	demoted := promoted
	demoted.Role = account.Viewer
	demoted.PasswordHash = account.HashPassword("changed password")
	for _, a := range []account.Account{promoted, demoted} {
		if err := s.UpdateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ { // deleting twice changes nothing more
		found, err := s.DeleteAccount(ctx, ana.ID, created.Add(2*time.Hour+time.Duration(i)*time.Hour))
		if err != nil || !found {
			t.Fatalf("delete %s: found %v, %v", ana.ID, found, err)
		}
	}
	if found, err := s.DeleteAccount(ctx, "00000000deadbeef", created); err != nil || found {
		t.Fatalf("delete an unknown id: found %v, %v; want not found", found, err)
	}

	all, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != maria.ID || all[1].ID != ana.ID {
		t.Fatalf("accounts %+v, want maria then ana", all)
	}
	m := all[0]
	if m.Username != "maria" || m.Role != account.Viewer || m.Deleted() || !m.CreatedAt.Equal(created) ||
		!m.ChangedAt.Equal(created.Add(time.Hour)) {
		t.Errorf("maria after two changes: %+v", m)
	}
	if !account.CheckPassword(m.PasswordHash, "changed password") || account.CheckPassword(m.PasswordHash, "first password") {
		t.Error("maria's password is not the changed one")
	}
	if a := all[1]; !a.Deleted() || !a.DeletedAt.Equal(created.Add(2*time.Hour)) {
		t.Errorf("ana after deletion: deleted at %v, want %v", a.DeletedAt, created.Add(2*time.Hour))
	}

	// The cache of a node signs maria in and not ana.
	c := account.NewCache(s.Accounts, time.Hour, nil)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Authenticate("maria", "changed password"); !ok {
		t.Error("maria cannot sign in")
	}
	if _, ok := c.Authenticate("ana", "second password"); ok {
		t.Error("deleted ana signs in")
	}
}
