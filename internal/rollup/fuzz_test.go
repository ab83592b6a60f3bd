package rollup_test

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/truthboard/truthboard/internal/event"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
)

// hostileQueries seed FuzzParseQuery: the query strings of GET /v1/metrics an attacker or a
// careless script would send. They run as test cases in every go test.
var hostileQueries = []string{
	"",
	"window=5m&by=moment,channel&compare=previous&series=true&recovery=true&moment=zmot&channel=web,app",
	"region=" + url.QueryEscape(`' OR 1=1 --`),
	"region=" + url.QueryEscape(`\' OR 1=1 --`),
	"region=" + url.QueryEscape(`north') OR ('1'='1`),
	"product=" + url.QueryEscape(`x'; DROP TABLE events; --`),
	"segment=" + url.QueryEscape(`\`) + "&agent_team=" + url.QueryEscape(`?`) + "&touchpoint=" + url.QueryEscape(`$1`),
	"touchpoint=" + url.QueryEscape(`/* comment */ ) UNION ALL SELECT * FROM system.users --`),
	"region=" + url.QueryEscape("{name:String}") + "&product=" + url.QueryEscape("@p1"),
	"region=%00", "region=a%00b", "region=%FF", "region=%C0%AF", "region=%ED%A0%80", "region=%EF%BB%BF",
	"region=" + strings.Repeat("x", 10<<10),
	"touchpoint=" + strings.Repeat("%C3%A9", 100), "touchpoint=" + strings.Repeat("%C3%A9", 101),
	"region=" + strings.Repeat("a,", 60),
	"region=+,+,%20", "region=%0A%09north%0D", "region=north&region=north,+north+",
	"window=10y", "window=1m&window=24h", "window=", "window=5M", "window=%00", "window=-5m", "window=0",
	"by=moment,moment", "by=moment;channel", "by=", "by=region", "by=MOMENT", "by=touchpoint&by=moment",
	"moment=ZMOT", "moment=zmot,service,zmot", "channel=web,fax", "channel=",
	"compare=previous&compare=previous", "compare=1", "compare=last_week&window=30d&by=touchpoint&series=true",
	"compare=last_week&window=15m", "compare=yesterday", "window=7d&compare=previous&series=true", "window=1w", "series=yes", "recovery=1",
	"Region=north", "regoin=north&colour=red", "=x", "&&&", "a=1&b=2&c=3&d=4",
	"window=%zz", "%=1",
}

// FuzzParseQuery checks ParseQuery's promises on any query string: no panic; an error is a
// *ParamError naming a parameter of the query, in valid UTF-8; an accepted query holds only
// allowed values, re-encodes and re-parses to itself, and its filter values never reach the
// text of the SQL built from it.
func FuzzParseQuery(f *testing.F) {
	for _, s := range hostileQueries {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // the API answers 400 before ParseQuery
		}
		q, err := rollup.ParseQuery(v)
		if err != nil {
			var pe *rollup.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseQuery(%q): %T %v, want a *ParamError", raw, err, err)
			}
			if _, ok := v[pe.Param]; !ok && pe.Param != "window" {
				t.Fatalf("ParseQuery(%q) blames %q, which the query does not have", raw, pe.Param)
			}
			if pe.Message == "" || !utf8.ValidString(pe.Message) {
				t.Fatalf("ParseQuery(%q): message %q", raw, pe.Message)
			}
			again, err2 := rollup.ParseQuery(v)
			if err2 == nil || err2.Error() != err.Error() || !reflect.DeepEqual(again, q) {
				t.Fatalf("ParseQuery(%q) answers %v, then %v", raw, err, err2)
			}
			return
		}
		checkQuery(t, raw, q)
		back, err := rollup.ParseQuery(encodeQuery(q))
		if err != nil || !reflect.DeepEqual(back, q) {
			t.Fatalf("ParseQuery(%q) = %+v; encoded as %q it reads back as %+v, %v", raw, q, encodeQuery(q).Encode(), back, err)
		}
		checkSQL(t, q)
	})
}

// checkQuery checks that an accepted query holds only values the API allows.
func checkQuery(t *testing.T, raw string, q rollup.Query) {
	t.Helper()
	known := false
	for _, w := range rollup.Windows {
		known = known || w.Name == q.WindowName && w.Length == q.Window
	}
	if !known {
		t.Fatalf("ParseQuery(%q): window %q %v is not one of the API's", raw, q.WindowName, q.Window)
	}
	last := -1
	for _, d := range q.By {
		i := slices.Index(rollup.Dimensions, d)
		if i <= last {
			t.Fatalf("ParseQuery(%q): by %v is not a subset of %v in its order", raw, q.By, rollup.Dimensions)
		}
		last = i
	}
	for _, p := range rollup.FilterParams {
		vals := *q.Filters.Field(p)
		if len(vals) > rollup.MaxFilterValues {
			t.Fatalf("ParseQuery(%q): %d values of %s", raw, len(vals), p)
		}
		for i, s := range vals {
			switch {
			case !utf8.ValidString(s), strings.ContainsAny(s, "\x00,"), s == "", strings.TrimSpace(s) != s,
				utf8.RuneCountInString(s) > rollup.MaxFilterLen, slices.Contains(vals[:i], s):
				t.Fatalf("ParseQuery(%q): %s value %q: not a trimmed UTF-8 text of 1 to %d characters without NUL or comma, given once",
					raw, p, s, rollup.MaxFilterLen)
			case p == "moment" && !slices.Contains(event.Moments, s), p == "channel" && !slices.Contains(event.Channels, s):
				t.Fatalf("ParseQuery(%q): %s value %q is not in the vocabulary", raw, p, s)
			}
		}
	}
}

// encodeQuery writes an accepted query back as URL parameters.
func encodeQuery(q rollup.Query) url.Values {
	v := url.Values{"window": {q.WindowName}}
	if len(q.By) > 0 {
		v.Set("by", strings.Join(q.By, ","))
	}
	if q.Compare {
		v.Set("compare", q.Comparison())
	}
	if q.Step > 0 {
		v.Set("series", "true")
	}
	if q.Recovery {
		v.Set("recovery", "true")
	}
	for _, p := range rollup.FilterParams {
		for _, s := range *q.Filters.Field(p) {
			v.Add(p, s)
		}
	}
	return v
}

// checkSQL checks that the SQL of every query builder has the same text whatever the filter
// values: they travel as bound arguments only.
func checkSQL(t *testing.T, q rollup.Query) {
	t.Helper()
	plain := q
	plain.Filters = rollup.Filters{}
	for _, p := range rollup.FilterParams {
		vals := *q.Filters.Field(p)
		neutral := make([]string, len(vals))
		for i := range neutral {
			neutral[i] = "v"
		}
		*plain.Filters.Field(p) = neutral
	}
	now := time.Date(2026, 3, 10, 10, 17, 42, 0, time.UTC)
	p := q.Plan(now)
	for _, b := range []struct {
		name string
		sql  func(rollup.Query) (string, []any)
	}{
		{"RollupSQL", func(q rollup.Query) (string, []any) { return store.RollupSQL(q, p) }},
		{"RecoverySQL", func(q rollup.Query) (string, []any) { return store.RecoverySQL(q, p, now) }},
		{"LatestNegativesSQL", func(q rollup.Query) (string, []any) { return store.LatestNegativesSQL(q, p, 0) }},
	} {
		got, args := b.sql(q)
		want, neutralArgs := b.sql(plain)
		if got != want || len(args) != len(neutralArgs) {
			t.Fatalf("%s: the filter values change the SQL text:\n%s\nwith neutral values:\n%s", b.name, got, want)
		}
	}
}
