// Package store is Truthboard's only door to ClickHouse: it opens the connection, applies the
// schema in clickhouse/migrations, writes accepted events and answers the queries of the other
// packages. It speaks the native protocol (port 9000) by default, and ClickHouse's HTTP interface
// (port 8123) when asked (Options.Protocol): the HTTP interface of ClickHouse 18.16 does not work
// with clickhouse-go, that of current releases does.
package store

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/truthboard/truthboard/internal/rollup"
)

// Protocols the store speaks to ClickHouse (Options.Protocol).
const (
	// ProtocolNative is ClickHouse's native TCP protocol (port 9000), the default.
	ProtocolNative = "native"
	// ProtocolHTTP is ClickHouse's HTTP interface (port 8123): queries and inserts travel as
	// HTTP requests with Native blocks. ClickHouse 18.16 answers it in ways clickhouse-go cannot
	// read; current releases work.
	ProtocolHTTP = "http"
)

// Options says which ClickHouse server and database to use.
type Options struct {
	// Addr is host:port of the protocol below, or several, comma-separated: replicas of one
	// cluster, tried in order when a connection is opened (the first that answers serves it).
	Addr string
	// Protocol is ProtocolNative ("" means it too) or ProtocolHTTP.
	Protocol string
	Database string
	// Cluster, when set, is the ClickHouse cluster (of the servers' remote_servers) that the
	// schema is created on: replicated tables behind Distributed ones (see cluster.go).
	Cluster  string
	User     string
	Password string
	// DialTimeout bounds connecting; a server that does not answer in time is reported down.
	DialTimeout time.Duration
	// MaxExecutionTime bounds every query on the server side: cancelling a context does not stop
	// a running ClickHouse query, so the server must stop it itself.
	MaxExecutionTime time.Duration
	// MaxOpenConns bounds the pool's connections (default 8). Callers that must not take them
	// all (the live feeds) bound their own share.
	MaxOpenConns int
}

// Store holds a connection pool to the Truthboard database. A store made by Open is connected
// from the start; one made by New is not until Bootstrap succeeds, and until then every method
// that talks to ClickHouse fails at once with an error marked unavailable (see unavailableError),
// so that nothing reads or writes a table before the schema is applied: the ingest drainer
// retries such an error instead of taking a missing table for bad data, the dashboards show
// "Degraded", and the API answers 503.
type Store struct {
	opts     Options
	database string
	// sess is the connection and its server's version, nil until the store is connected. It is
	// set once (Open, or Bootstrap) and read without a lock by every method.
	sess atomic.Pointer[session]
	// ready is closed when sess is set.
	ready chan struct{}

	// mu orders Bootstrap against Close: a connection made after Close is closed, not kept.
	mu      sync.Mutex
	closed  bool
	lastErr error // why the last Bootstrap failed, for the not-ready error

	// cover is since when each rollup table holds every event (coverage.go), read after the
	// migrations.
	cover atomic.Pointer[coverage]
}

// session is a connection pool and what was learnt when it opened.
type session struct {
	conn    driver.Conn
	version driver.ServerVersion
}

// New returns a store of o that is not connected yet: Bootstrap connects it. It fails only on
// options that can never work.
func New(o Options) (*Store, error) {
	if o.Database == "" {
		return nil, errors.New("open clickhouse: no database name given")
	}
	if _, err := driverProtocol(o.Protocol); err != nil {
		return nil, err
	}
	return &Store{opts: o, database: o.Database, ready: make(chan struct{})}, nil
}

// Open connects to ClickHouse, creating the database when it does not exist yet. The schema is
// not applied: call Migrate.
func Open(ctx context.Context, o Options) (*Store, error) {
	s, err := New(o)
	if err != nil {
		return nil, err
	}
	sess, err := dial(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := s.publish(sess); err != nil {
		return nil, err
	}
	s.cover.Store(readCoverage(ctx, sess.conn))
	return s, nil
}

// Bootstrap connects a store made by New: it creates the database when missing, applies the
// migrations, and only then lets the other methods use the connection. A store that is
// already connected is left as it is. An error marked unavailable means ClickHouse did not
// answer: call again later (the server does, with backoff). Any other error is one ClickHouse
// gave (a wrong password, a refused migration) and will not go away by itself.
func (s *Store) Bootstrap(ctx context.Context) (applied []Migration, err error) {
	defer func() {
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
	}()
	defer markUnavailable(&err)
	if s.sess.Load() != nil {
		return nil, nil
	}
	sess, err := dial(ctx, s.opts)
	if err != nil {
		return nil, err
	}
	if applied, err = migrate(ctx, sess.conn, s.opts.Cluster, s.database); err != nil {
		sess.conn.Close()
		return applied, err
	}
	if err := s.publish(sess); err != nil {
		return applied, err
	}
	s.cover.Store(readCoverage(ctx, sess.conn))
	return applied, nil
}

// publish makes sess the store's connection, unless the store was closed meanwhile.
func (s *Store) publish(sess *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		sess.conn.Close()
		return errors.New("clickhouse: the store was closed while it connected")
	}
	if !s.sess.CompareAndSwap(nil, sess) { // two Bootstraps at once: keep the first
		sess.conn.Close()
		return nil
	}
	close(s.ready)
	return nil
}

// dial creates the database when missing and opens a pool on it.
func dial(ctx context.Context, o Options) (*session, error) {
	// The database may not exist yet, and a connection that names a missing database fails, so
	// create it through a first connection to the server's default database.
	boot, err := connect(o, "default")
	if err != nil {
		return nil, err
	}
	if o.Cluster != "" {
		err = createClusterBase(ctx, boot, o.Cluster, o.Database)
	} else if err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(o.Database)); err != nil {
		err = fmt.Errorf("create database %s on %s: %w", o.Database, o.Addr, err)
	}
	boot.Close()
	if err != nil {
		return nil, err
	}
	conn, err := connect(o, o.Database)
	if err != nil {
		return nil, err
	}
	v, err := conn.ServerVersion()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse server version at %s: %w", o.Addr, err)
	}
	return &session{conn: conn, version: *v}, nil
}

func connect(o Options, database string) (driver.Conn, error) {
	settings := clickhouse.Settings{}
	if o.MaxExecutionTime > 0 {
		// Only integer and bool settings can be sent to ClickHouse 18.16 by clickhouse-go.
		settings["max_execution_time"] = int(o.MaxExecutionTime.Seconds() + 0.999)
	}
	if o.Cluster != "" {
		// An insert into a Distributed table returns once every shard has its rows, not once
		// they are queued on the server that took it: a 202's events must not wait in a queue
		// of a server that may be lost.
		settings["insert_distributed_sync"] = 1
	}
	maxOpen := o.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = 8
	}
	protocol, err := driverProtocol(o.Protocol)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:             strings.Split(o.Addr, ","),
		Protocol:         protocol,
		Auth:             clickhouse.Auth{Database: database, Username: o.User, Password: o.Password},
		DialTimeout:      o.DialTimeout,
		Settings:         settings,
		MaxOpenConns:     maxOpen,
		MaxIdleConns:     max(1, maxOpen/2),
		ConnMaxLifetime:  time.Hour,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse at %s: %w", o.Addr, err)
	}
	if err := conn.Ping(context.Background()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to clickhouse at %s (is it running? scripts/clickhouse.sh starts a local one): %w", o.Addr, err)
	}
	return conn, nil
}

// driverProtocol is clickhouse-go's name of protocol (an Options.Protocol).
func driverProtocol(protocol string) (clickhouse.Protocol, error) {
	switch protocol {
	case "", ProtocolNative:
		return clickhouse.Native, nil
	case ProtocolHTTP:
		return clickhouse.HTTP, nil
	}
	return 0, fmt.Errorf("open clickhouse: unknown protocol %q: use %q (port 9000) or %q (port 8123)", protocol, ProtocolNative, ProtocolHTTP)
}

// errNotReady is the cause of the errors of a store that Bootstrap has not connected yet.
var errNotReady = errors.New("not connected yet: the schema is applied as soon as ClickHouse answers")

// connection is the store's connection, or an error marked unavailable while there is none.
// answering returns q's plan p with the rollup table that holds every event it reads
// (coverage.go).
func (s *Store) answering(q rollup.Query, p rollup.Plan) rollup.Plan {
	if c := s.cover.Load(); c != nil {
		return c.answering(q, p)
	}
	return p
}

func (s *Store) connection() (driver.Conn, error) {
	if sess := s.sess.Load(); sess != nil {
		return sess.conn, nil
	}
	s.mu.Lock()
	last := s.lastErr
	s.mu.Unlock()
	err := fmt.Errorf("clickhouse at %s: %w", s.opts.Addr, errNotReady)
	if last != nil {
		err = fmt.Errorf("clickhouse at %s: %w (last attempt: %v)", s.opts.Addr, errNotReady, last)
	}
	return nil, &unavailableError{err}
}

// Ready is closed once the store is connected and its schema applied (at once for Open).
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Close closes every connection of the pool; a later Bootstrap keeps no connection.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if sess := s.sess.Load(); sess != nil {
		return sess.conn.Close()
	}
	return nil
}

// Ping reports whether ClickHouse answers and the schema is applied.
func (s *Store) Ping(ctx context.Context) (err error) {
	defer markUnavailable(&err)
	conn, err := s.connection()
	if err != nil {
		return err
	}
	return conn.Ping(ctx)
}

// ServerVersion is the version of the ClickHouse server, e.g. "18.16.1"; "" before the store
// is connected.
func (s *Store) ServerVersion() string {
	sess := s.sess.Load()
	if sess == nil {
		return ""
	}
	v := sess.version.Version
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Conn is the underlying connection, for tests and benchmarks that measure the bare driver;
// nil before the store is connected.
func (s *Store) Conn() driver.Conn {
	if sess := s.sess.Load(); sess != nil {
		return sess.conn
	}
	return nil
}

// Database is the name of the database the store uses.
func (s *Store) Database() string { return s.database }

// unavailableError marks an error of ClickHouse not being reachable (as opposed to a query it
// refused), so that callers can answer 503 and ask the client to retry. Callers recognise it by
// its Unavailable method through errors.As, with an interface of their own: they need not
// import this package to tell an outage from a bug.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string     { return e.err.Error() }
func (e *unavailableError) Unwrap() error     { return e.err }
func (e *unavailableError) Unavailable() bool { return true }

// markUnavailable wraps *errp in an unavailableError when it is a failure of the connection.
// Every method of Store that talks to ClickHouse defers it on its named error result.
func markUnavailable(errp *error) {
	var marked *unavailableError
	if err := *errp; connectionFailed(err) && !errors.As(err, &marked) {
		*errp = &unavailableError{err}
	}
}

// connectionFailed reports whether err means ClickHouse could not be reached.
//
// Only failures of the connection count: refused, reset or closed, timed out, or a pool that
// could not get a connection. The server's own exceptions and errors of ours (a value that does
// not scan, say) are not outages: telling a client to retry them would only hide a bug.
func connectionFailed(err error) bool {
	var netErr net.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sqldriver.ErrBadConn), errors.Is(err, clickhouse.ErrAcquireConnTimeout):
		return true
	}
	return false
}

// invalidDataError marks an error an insert gets for the values it carries, as opposed to
// ClickHouse being away or its schema missing a table: sending the same rows again fails the
// same way, so a caller that retries for ever would block everything behind them. Callers
// recognise it by its InvalidData method through errors.As, like unavailableError.
type invalidDataError struct{ err error }

func (e *invalidDataError) Error() string     { return e.err.Error() }
func (e *invalidDataError) Unwrap() error     { return e.err }
func (e *invalidDataError) InvalidData() bool { return true }

// markInvalidData wraps *errp in an invalidDataError when it is about the values inserted.
// Methods that insert defer it on their named error result.
func markInvalidData(errp *error) {
	var marked *invalidDataError
	if err := *errp; invalidData(err) && !errors.As(err, &marked) {
		*errp = &invalidDataError{err}
	}
}

// dataErrorCodes are the codes of ClickHouse's exceptions about the values of the rows, not
// the server's state: a value it cannot parse or convert, out of its type's range, refused by
// a constraint or by throwIf in a materialized column or view. Codes about the server or the
// schema (a missing table, memory, too many parts, timeouts) are left out: they pass, and the
// rows must wait for them rather than be put aside.
var dataErrorCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	25:  true, // CANNOT_PARSE_ESCAPE_SEQUENCE
	26:  true, // CANNOT_PARSE_QUOTED_STRING
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	117: true, // INCORRECT_DATA
	131: true, // TOO_LARGE_STRING_SIZE
	190: true, // SIZES_OF_ARRAYS_DONT_MATCH
	321: true, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
	349: true, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
	395: true, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
	407: true, // DECIMAL_OVERFLOW
	469: true, // VIOLATED_CONSTRAINT
	691: true, // UNKNOWN_ELEMENT_OF_ENUM
}

// invalidData reports whether err refuses the values of an insert: an exception of ClickHouse
// with a code of dataErrorCodes, or a value the driver cannot put in its column's type (e.g.
// an Enum8 element the table does not have). A Go type that does not fit a column's type
// (column.ColumnConverterError) is the schema's or ours, for every row alike, and is not one.
func invalidData(err error) bool {
	var exc *clickhouse.Exception
	var colErr *column.Error
	switch {
	case err == nil:
		return false
	case errors.As(err, &exc):
		return dataErrorCodes[exc.Code]
	case errors.As(err, &colErr):
		return true
	}
	return false
}

// quoteIdent quotes a ClickHouse identifier such as a database name.
func quoteIdent(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '`')
	for i := 0; i < len(s); i++ {
		if s[i] == '`' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(append(b, '`'))
}
