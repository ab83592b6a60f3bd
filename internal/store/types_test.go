package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestColumnTypesReadBack reads one row of every kind of column the store's queries can return
// (and a few more) through the driver, with the protocol the tests use: on ClickHouse 18.16 the
// native one, on chdb the HTTP interface, whose Native answers clickhouse/compat/server.js
// rewrites for the driver's protocol revision column by column. A type it walked wrongly would
// shift every later column, so each value is checked, several blocks included.
func TestColumnTypesReadBack(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	var (
		n       uint64
		i8      int8
		f       float64
		str     string
		fixed   string
		dt      time.Time
		d       time.Time
		enum    string
		nullStr *string
		nullInt *uint32
		arr     []string
		nullArr []*uint8
		nested  [][]uint64
		tuple   []any
		lc      string
		lcNull  *string
		uuid    string
		last    string
	)
	row := s.Conn().QueryRow(ctx, `SELECT
		toUInt64(18446744073709551615) AS n,
		toInt8(-5) AS i8,
		toFloat64(2.5) AS f,
		'héllo' AS str,
		toFixedString('ab', 3) AS fixed,
		toDateTime('2026-01-02 03:04:05', 'UTC') AS dt,
		toDate('2026-01-02') AS d,
		CAST('web' AS Enum8('zmot' = 1, 'web' = 2)) AS enum,
		CAST(NULL AS Nullable(String)) AS nullStr,
		CAST(7 AS Nullable(UInt32)) AS nullInt,
		['a', '', 'ccc'] AS arr,
		[1, NULL, 3] AS nullArr,
		[[1, 2], [], [3]] AS nested,
		tuple(toUInt8(1), 'x') AS tup,
		toLowCardinality('low') AS lc,
		CAST('maybe' AS LowCardinality(Nullable(String))) AS lcNull,
		toUUID('01234567-89ab-cdef-0123-456789abcdef') AS uuid,
		'the end' AS last`)
	if err := row.Scan(&n, &i8, &f, &str, &fixed, &dt, &d, &enum, &nullStr, &nullInt, &arr, &nullArr, &nested, &tuple, &lc, &lcNull, &uuid, &last); err != nil {
		t.Fatalf("scan: %v", err)
	}
	check := func(name string, ok bool, got any) {
		t.Helper()
		if !ok {
			t.Errorf("%s read back as %#v", name, got)
		}
	}
	check("UInt64", n == 18446744073709551615, n)
	check("Int8", i8 == -5, i8)
	check("Float64", f == 2.5, f)
	check("String", str == "héllo", str)
	check("FixedString(3)", fixed == "ab\x00", fixed)
	check("DateTime", dt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), dt)
	check("Date", d.Format(time.DateOnly) == "2026-01-02", d)
	check("Enum8", enum == "web", enum)
	check("Nullable(String)", nullStr == nil, nullStr)
	check("Nullable(UInt32)", nullInt != nil && *nullInt == 7, nullInt)
	check("Array(String)", len(arr) == 3 && arr[0] == "a" && arr[1] == "" && arr[2] == "ccc", arr)
	check("Array(Nullable(UInt8))", len(nullArr) == 3 && nullArr[1] == nil && *nullArr[2] == 3, nullArr)
	check("Array(Array(UInt64))", len(nested) == 3 && len(nested[1]) == 0 && nested[2][0] == 3, nested)
	check("Tuple(UInt8, String)", len(tuple) == 2 && tuple[1] == "x", tuple)
	check("LowCardinality(String)", lc == "low", lc)
	check("LowCardinality(Nullable(String))", lcNull != nil && *lcNull == "maybe", lcNull)
	check("UUID", uuid == "01234567-89ab-cdef-0123-456789abcdef", uuid)
	check("the last column", last == "the end", last)

	// Several blocks of several rows: every block is rewritten on its own.
	rows, err := s.Conn().Query(ctx, `SELECT number, toString(number), [number], toLowCardinality(toString(number % 3))
		FROM system.numbers LIMIT 10000 SETTINGS max_block_size = 1000`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var want uint64
	for rows.Next() {
		var (
			num  uint64
			text string
			one  []uint64
			mod  string
		)
		if err := rows.Scan(&num, &text, &one, &mod); err != nil {
			t.Fatalf("row %d: %v", want, err)
		}
		if num != want || text != strconv.FormatUint(want, 10) || len(one) != 1 || one[0] != want || mod != strconv.FormatUint(want%3, 10) {
			t.Fatalf("row %d read back as %d %q %v %q", want, num, text, one, mod)
		}
		want++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want != 10000 {
		t.Fatalf("read %d rows, want 10000", want)
	}
}
