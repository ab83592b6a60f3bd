package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/truthboard/truthboard/internal/store"
)

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
		t.Run(tc.name, func(t *testing.T) {
			if got := store.Unavailable(tc.err); got != tc.want {
				t.Fatalf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
