package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// unavailable is the check the callers of the store make (ingest, web): by behaviour, without
// knowing the store's error type.
func unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"closed mid-answer", fmt.Errorf("read: %w", io.EOF), true},
		{"timed out", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"pool exhausted", clickhouse.ErrAcquireConnTimeout, true},
		{"the server's exception", &clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}, false},
		{"a bug of ours", errors.New("converting UInt64 to *uint32 is unsupported"), false},
	} {
		t.Run(tc.name, func(t *testing.T) { checkMark(t, store.MarkUnavailable, unavailable, tc.err, tc.want) })
	}
}

// checkMark checks that mark(err) is recognised by is exactly when want says, keeps err's
// identity and text, and is not wrapped twice.
func checkMark(t *testing.T, mark func(error) error, is func(error) bool, err error, want bool) {
	t.Helper()
	got := mark(err)
	if is(got) != want {
		t.Fatalf("%v: recognised %v, want %v", err, !want, want)
	}
	if !errors.Is(got, err) || (err != nil && got.Error() != err.Error()) {
		t.Fatalf("marked error %q does not keep %q", got, err)
	}
	if again := mark(got); again != got {
		t.Fatalf("an error marked twice is wrapped twice: %#v", again)
	}
}

// TestUnavailableFromMethods takes ClickHouse away from a store: every method then answers an
// error its callers recognise as an outage, while a query the server refuses is not one.
func TestUnavailableFromMethods(t *testing.T) {
	direct, proxied, proxy := storetest.OpenProxied(t, 500*time.Millisecond)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	evs := []event.Event{{EventID: "a", OccurredAt: now, Moment: "fmot", Channel: "web", Touchpoint: "home"}}
	if err := proxied.InsertEvents(ctx, evs, now); err != nil {
		t.Fatalf("insert while ClickHouse answers: %v", err)
	}

	q, err := rollup.ParseQuery(url.Values{"window": {"5m"}})
	if err != nil {
		t.Fatal(err)
	}
	p := q.Plan(now)

	proxy.Cut()
	for name, call := range map[string]func(context.Context) error{
		"Ping":          proxied.Ping,
		"InsertEvents":  func(ctx context.Context) error { return proxied.InsertEvents(ctx, evs, now) },
		"ExistingKeys":  func(ctx context.Context) error { _, err := proxied.ExistingKeys(ctx, evs); return err },
		"Rollup":        func(ctx context.Context) error { _, err := proxied.Rollup(ctx, q, p); return err },
		"DisplayTokens": func(ctx context.Context) error { _, err := proxied.DisplayTokens(ctx); return err },
	} {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := call(ctx)
		cancel()
		if !unavailable(err) {
			t.Errorf("%s with ClickHouse away: %v, want an error marked unavailable", name, err)
		}
	}

	if err := direct.Conn().Exec(ctx, "DROP TABLE display_tokens"); err != nil {
		t.Fatal(err)
	}
	_, err = direct.DisplayTokens(ctx)
	var exc *clickhouse.Exception
	if !errors.As(err, &exc) || unavailable(err) {
		t.Fatalf("DisplayTokens of a dropped table: %v; want the server's exception, not marked unavailable", err)
	}
}

// TestBootstrap covers a store made by New: before Bootstrap succeeds, every method fails at
// once as unavailable, without touching a table (so ingest retries and never takes a missing
// table for bad data); Bootstrap on a ClickHouse that does not answer is unavailable too, one
// that refuses the password is not; a successful Bootstrap creates the database, applies the
// schema and makes the methods work.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	o := storetest.Options(t)
	proxy := storetest.NewProxy(t, o.Addr)
	proxy.Cut()
	target := o.Addr
	o.Addr, o.DialTimeout = proxy.Addr(), 500*time.Millisecond
	s, err := store.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Second)
	evs := []event.Event{{EventID: "a", OccurredAt: now, Moment: "fmot", Channel: "web", Touchpoint: "home"}}
	calls := map[string]func(context.Context) error{
		"Ping":           s.Ping,
		"InsertEvents":   func(ctx context.Context) error { return s.InsertEvents(ctx, evs, now) },
		"ExistingKeys":   func(ctx context.Context) error { _, err := s.ExistingKeys(ctx, evs); return err },
		"WaitForInserts": func(ctx context.Context) error { return s.WaitForInserts(ctx, "x") },
		"DisplayTokens":  func(ctx context.Context) error { _, err := s.DisplayTokens(ctx); return err },
		"IngestKeys":     func(ctx context.Context) error { _, err := s.IngestKeys(ctx); return err },
		"DropExpired":    func(ctx context.Context) error { _, err := s.DropExpired(ctx, now, time.Hour); return err },
		"Migrate":        func(ctx context.Context) error { _, err := s.Migrate(ctx); return err },
	}
	check := func(when string) {
		t.Helper()
		for name, call := range calls {
			if err := call(ctx); !unavailable(err) {
				t.Errorf("%s %s: %v, want an error marked unavailable", name, when, err)
			}
		}
	}
	check("before any Bootstrap")
	if _, err := s.Bootstrap(ctx); !unavailable(err) {
		t.Fatalf("Bootstrap with ClickHouse down: %v, want an error marked unavailable", err)
	}
	check("after a failed Bootstrap")
	select {
	case <-s.Ready():
		t.Fatal("Ready is closed before a Bootstrap succeeded")
	default:
	}

	proxy.Restore()
	wrong := o
	wrong.Password = "not-the-password"
	bad, err := store.New(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Bootstrap(ctx); err == nil || unavailable(err) {
		t.Errorf("Bootstrap with a wrong password: %v, want ClickHouse's refusal, not marked unavailable", err)
	}

	applied, err := s.Bootstrap(ctx)
	if err != nil {
		t.Fatalf("Bootstrap with ClickHouse back: %v", err)
	}
	o.Addr = target
	direct, err := store.Open(ctx, o) // for the cleanup, and to see what Bootstrap made
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = direct.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+o.Database)
		direct.Close()
	}()
	ms, _ := store.Migrations()
	if len(applied) != len(ms) {
		t.Errorf("Bootstrap applied %d migrations, want all %d", len(applied), len(ms))
	}
	<-s.Ready()
	if err := s.InsertEvents(ctx, evs, now); err != nil {
		t.Fatalf("insert after Bootstrap: %v", err)
	}
	if n, err := direct.CountEvents(ctx); err != nil || n != 1 {
		t.Errorf("events stored after Bootstrap: %d, %v; want 1", n, err)
	}
}
