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
