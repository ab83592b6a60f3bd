package rollup_test

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/rollup"
)

func TestParseQuery(t *testing.T) {
	fifty := make([]string, 50)
	for i := range fifty {
		fifty[i] = fmt.Sprintf("r%d", i)
	}
	for _, tc := range []struct {
		name, query string
		want        rollup.Query
	}{
		{"defaults", "", rollup.Query{Window: 5 * time.Minute, WindowName: "5m"}},
		{"every window 1m", "window=1m", rollup.Query{Window: time.Minute, WindowName: "1m"}},
		{"every window 15m", "window=15m", rollup.Query{Window: 15 * time.Minute, WindowName: "15m"}},
		{"every window 1h", "window=1h", rollup.Query{Window: time.Hour, WindowName: "1h"}},
		{"every window 24h", "window=24h", rollup.Query{Window: 24 * time.Hour, WindowName: "24h"}},
		{"every window 7d", "window=7d", rollup.Query{Window: 7 * 24 * time.Hour, WindowName: "7d"}},
		{"every window 30d", "window=30d", rollup.Query{Window: 30 * 24 * time.Hour, WindowName: "30d"}},
		{"empty window is the default", "window=", rollup.Query{Window: 5 * time.Minute, WindowName: "5m"}},
		{"by in dimension order, once each", "by=touchpoint,moment&by=+channel+,moment,,",
			rollup.Query{Window: 5 * time.Minute, WindowName: "5m", By: []string{"moment", "channel", "touchpoint"}}},
		{"empty by is no grouping", "by=", rollup.Query{Window: 5 * time.Minute, WindowName: "5m"}},
		{"compare previous", "compare=previous", rollup.Query{Window: 5 * time.Minute, WindowName: "5m", Compare: true}},
		{"compare none", "compare=none", rollup.Query{Window: 5 * time.Minute, WindowName: "5m"}},
		{"compare last_week", "compare=last_week", rollup.Query{Window: 5 * time.Minute, WindowName: "5m", Compare: true, LastWeek: true}},
		{"series on overview_30s with compare=last_week", "compare=last_week&series=true&window=15m",
			rollup.Query{Window: 15 * time.Minute, WindowName: "15m", Compare: true, LastWeek: true, Step: 30 * time.Second}},
		{"series on overview_2m: 2-minute steps", "series=true&window=1h", rollup.Query{Window: time.Hour, WindowName: "1h", Step: 2 * time.Minute}},
		{"series on overview_30m", "series=true&window=24h", rollup.Query{Window: 24 * time.Hour, WindowName: "24h", Step: 30 * time.Minute}},
		{"series on overview_1h", "series=true&window=7d", rollup.Query{Window: 7 * 24 * time.Hour, WindowName: "7d", Step: 4 * time.Hour}},
		{"series on detail_1h for 30d", "series=true&window=30d&by=touchpoint",
			rollup.Query{Window: 30 * 24 * time.Hour, WindowName: "30d", Step: 24 * time.Hour, By: []string{"touchpoint"}}},
		{"filters: lists, repeats, blanks and duplicates",
			"region=north,+south+&region=east,north,&moment=service&channel=voice,chat&segment=small_business&agent_team=billing&product=tv&touchpoint=checkout",
			rollup.Query{Window: 5 * time.Minute, WindowName: "5m", Filters: rollup.Filters{
				Moment: []string{"service"}, Channel: []string{"voice", "chat"}, Touchpoint: []string{"checkout"},
				Region: []string{"north", "south", "east"}, Product: []string{"tv"}, Segment: []string{"small_business"},
				AgentTeam: []string{"billing"},
			}}},
		{"free text is kept as it is", "region=" + url.QueryEscape(`' OR 1=1 --`),
			rollup.Query{Window: 5 * time.Minute, WindowName: "5m", Filters: rollup.Filters{Region: []string{`' OR 1=1 --`}}}},
		{"50 values", "region=" + strings.Join(fifty, ","),
			rollup.Query{Window: 5 * time.Minute, WindowName: "5m", Filters: rollup.Filters{Region: fifty}}},
		{"a value of 100 bytes", "product=" + strings.Repeat("p", 100),
			rollup.Query{Window: 5 * time.Minute, WindowName: "5m", Filters: rollup.Filters{Product: []string{strings.Repeat("p", 100)}}}},
		{"a value of 100 characters, 200 bytes: the longest touchpoint", "touchpoint=" + strings.Repeat("%C3%A9", 100),
			rollup.Query{Window: 5 * time.Minute, WindowName: "5m", Filters: rollup.Filters{Touchpoint: []string{strings.Repeat("é", 100)}}}},
		{"by twice is one list", "by=moment&by=moment,channel",
			rollup.Query{Window: 5 * time.Minute, WindowName: "5m", By: []string{"moment", "channel"}}},
		{"series on the overview", "series=true&window=1m", rollup.Query{Window: time.Minute, WindowName: "1m", Step: 2 * time.Second}},
		{"series on detail_1h", "series=true&window=24h&region=north",
			rollup.Query{Window: 24 * time.Hour, WindowName: "24h", Step: time.Hour, Filters: rollup.Filters{Region: []string{"north"}}}},
		{"series on detail_1m", "series=true&window=15m&by=touchpoint",
			rollup.Query{Window: 15 * time.Minute, WindowName: "15m", Step: time.Minute, By: []string{"touchpoint"}}},
		{"series false", "series=false", rollup.Query{Window: 5 * time.Minute, WindowName: "5m"}},
		{"recovery", "recovery=true&by=moment", rollup.Query{Window: 5 * time.Minute, WindowName: "5m", By: []string{"moment"}, Recovery: true}},
		{"recovery false", "recovery=false", rollup.Query{Window: 5 * time.Minute, WindowName: "5m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rollup.ParseQuery(v)
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tc.query, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseQuery(%q) =\n%+v\nwant\n%+v", tc.query, got, tc.want)
			}
		})
	}
}

func TestParseQueryErrors(t *testing.T) {
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("v%d", i)
	}
	for _, tc := range []struct {
		query, param, mentions string
	}{
		{"window=2h", "window", "1m, 5m, 15m, 1h, 24h, 7d, 30d"},
		{"window=1w", "window", `"1w"`},
		{"window=5M", "window", `"5M"`},
		{"by=product", "by", "moment, channel, touchpoint, region, agent_team"},
		{"by=moment,hour", "by", `"hour"`},
		{"compare=next", "compare", "compare=previous"},
		{"compare=yesterday", "compare", "compare=previous (the window just before), compare=last_week (the same window a week earlier)"},
		{"compare=lastweek", "compare", "compare=last_week"},
		{"compare=true", "compare", `"true"`},
		{"moment=xyz", "moment", "zmot, fmot, smot, tmot, service"},
		{"moment=service,fmot,Service", "moment", `"Service"`},
		{"channel=fax", "channel", "web, app"},
		{"regoin=north", "regoin", "unknown parameter"},
		{"Region=north", "Region", "unknown parameter"},
		{"region=" + strings.Join(many, ","), "region", "at most 50"},
		{"segment=" + strings.Repeat("s", 101), "segment", "longer than 100"},
		{"agent_team=%FF", "agent_team", "UTF-8"},
		{"touchpoint=a%00b", "touchpoint", "NUL"},
		{"region=%C0%AF", "region", "UTF-8"}, // an overlong '/'
		{"touchpoint=" + strings.Repeat("%C3%A9", 101), "touchpoint", "longer than 100 characters (got 101)"},
		{"window=1m&window=24h", "window", "given 2 times"},
		{"compare=previous&compare=none", "compare", "given 2 times"},
		{"series=true&series=true", "series", "given 2 times"},
		{"recovery=true&recovery=false", "recovery", "given 2 times"},
		{"zz=1&colour=red&window=2h", "colour", "unknown parameter"}, // the first unknown by name, every time
		{"=x", "", "unknown parameter"},
		{"series=yes", "series", "series=true"},
		{"series=1", "series", "series=true"},
		{"recovery=yes", "recovery", "recovery=true"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rollup.ParseQuery(v)
			var pe *rollup.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseQuery(%q) = %v, want a *ParamError", tc.query, err)
			}
			if pe.Param != tc.param || !strings.Contains(pe.Message, tc.mentions) {
				t.Errorf("ParseQuery(%q): param %q, message %q; want param %q and a message mentioning %q",
					tc.query, pe.Param, pe.Message, tc.param, tc.mentions)
			}
			want := "parameter " + tc.param + ": "
			if tc.param == "" {
				want = `parameter "": `
			}
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want it to start with %q", err.Error(), want)
			}
		})
	}
}

func TestDetailed(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"", false},
		{"by=moment,channel&moment=service&channel=voice", false},
		{"by=touchpoint", true},
		{"touchpoint=checkout", true},
		{"region=north", true},
		{"product=tv", true},
		{"segment=consumer", true},
		{"agent_team=billing", true},
	} {
		v, _ := url.ParseQuery(tc.query)
		q, err := rollup.ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Detailed(); got != tc.want {
			t.Errorf("%q: Detailed() = %v, want %v", tc.query, got, tc.want)
		}
	}
}

func TestPlan(t *testing.T) {
	at := func(day, h, m, s int) time.Time { return time.Date(2026, 3, day, h, m, s, 0, time.UTC) }
	now := time.Date(2026, 3, 10, 10, 17, 42, 500_000_000, time.UTC)
	for _, tc := range []struct {
		query string
		now   time.Time
		want  rollup.Plan
	}{
		// Unfiltered 1m: one-second steps; the second that is filling now is included.
		{"window=1m", now, rollup.Plan{Table: "overview_1s", Resolution: time.Second,
			From: at(10, 10, 16, 43), To: at(10, 10, 17, 43), PrevFrom: at(10, 10, 15, 43)}},
		// Unfiltered 5m: 10-second steps, the one filling now included; 15m: 30-second steps.
		{"window=5m", now, rollup.Plan{Table: "overview_10s", Resolution: 10 * time.Second,
			From: at(10, 10, 12, 50), To: at(10, 10, 17, 50), PrevFrom: at(10, 10, 7, 50)}},
		{"window=15m&by=moment,channel&moment=service&channel=voice", now, rollup.Plan{Table: "overview_30s", Resolution: 30 * time.Second,
			From: at(10, 10, 3, 0), To: at(10, 10, 18, 0), PrevFrom: at(10, 9, 48, 0)}},
		{"window=15m", at(10, 10, 17, 12), rollup.Plan{Table: "overview_30s", Resolution: 30 * time.Second,
			From: at(10, 10, 2, 30), To: at(10, 10, 17, 30), PrevFrom: at(10, 9, 47, 30)}},
		// Unfiltered 1h: 2-minute steps, cut from the epoch (10:16 to 10:18); 24h: 30-minute steps.
		{"window=1h", now, rollup.Plan{Table: "overview_2m", Resolution: 2 * time.Minute,
			From: at(10, 9, 18, 0), To: at(10, 10, 18, 0), PrevFrom: at(10, 8, 18, 0)}},
		{"window=1h", at(10, 10, 18, 0), rollup.Plan{Table: "overview_2m", Resolution: 2 * time.Minute,
			From: at(10, 9, 20, 0), To: at(10, 10, 20, 0), PrevFrom: at(10, 8, 20, 0)}},
		{"window=24h&by=channel", now, rollup.Plan{Table: "overview_30m", Resolution: 30 * time.Minute,
			From: at(9, 10, 30, 0), To: at(10, 10, 30, 0), PrevFrom: at(8, 10, 30, 0)}},
		// Filtered beyond moment and channel, or by touchpoint: the detail tables.
		{"window=1m&region=north", now, rollup.Plan{Table: "detail_1m", Resolution: time.Minute,
			From: at(10, 10, 17, 0), To: at(10, 10, 18, 0), PrevFrom: at(10, 10, 16, 0)}},
		{"window=5m&by=touchpoint", now, rollup.Plan{Table: "detail_1m", Resolution: time.Minute,
			From: at(10, 10, 13, 0), To: at(10, 10, 18, 0), PrevFrom: at(10, 10, 8, 0)}},
		{"window=1h&segment=consumer", now, rollup.Plan{Table: "detail_1m", Resolution: time.Minute,
			From: at(10, 9, 18, 0), To: at(10, 10, 18, 0), PrevFrom: at(10, 8, 18, 0)}},
		{"window=24h&region=north", now, rollup.Plan{Table: "detail_1h", Resolution: time.Hour,
			From: at(9, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(8, 11, 0, 0)}},
		// On a boundary, the step starting now is the one filling.
		{"window=1m", at(10, 10, 17, 42), rollup.Plan{Table: "overview_1s", Resolution: time.Second,
			From: at(10, 10, 16, 43), To: at(10, 10, 17, 43), PrevFrom: at(10, 10, 15, 43)}},
		{"window=5m", at(10, 10, 17, 40), rollup.Plan{Table: "overview_10s", Resolution: 10 * time.Second,
			From: at(10, 10, 12, 50), To: at(10, 10, 17, 50), PrevFrom: at(10, 10, 7, 50)}},
		{"window=24h&agent_team=billing", at(10, 10, 0, 0), rollup.Plan{Table: "detail_1h", Resolution: time.Hour,
			From: at(9, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(8, 11, 0, 0)}},
		// The long windows: hours, then days, unfiltered or not.
		{"window=7d", now, rollup.Plan{Table: "overview_1h", Resolution: time.Hour,
			From: at(3, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(3, 11, 0, 0).AddDate(0, 0, -7)}},
		{"window=7d&by=touchpoint", now, rollup.Plan{Table: "detail_1h", Resolution: time.Hour,
			From: at(3, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(3, 11, 0, 0).AddDate(0, 0, -7)}},
		{"window=30d&by=moment,channel", now, rollup.Plan{Table: "overview_1h", Resolution: time.Hour,
			From: at(10, 11, 0, 0).AddDate(0, 0, -30), To: at(10, 11, 0, 0), PrevFrom: at(10, 11, 0, 0).AddDate(0, 0, -60)}},
		{"window=30d&region=north", now, rollup.Plan{Table: "detail_1h", Resolution: time.Hour,
			From: at(10, 11, 0, 0).AddDate(0, 0, -30), To: at(10, 11, 0, 0), PrevFrom: at(10, 11, 0, 0).AddDate(0, 0, -60)}},
		// A touchpoint's regions and teams: the table sorted by touchpoint, unless a filter needs
		// product or segment; up to an hour, the minute detail.
		{"window=30d&by=region&moment=service&channel=voice&touchpoint=billing_call", now, rollup.Plan{Table: "touchpoint_1h", Resolution: time.Hour,
			From: at(10, 11, 0, 0).AddDate(0, 0, -30), To: at(10, 11, 0, 0), PrevFrom: at(10, 11, 0, 0).AddDate(0, 0, -60)}},
		{"window=24h&by=agent_team&touchpoint=checkout&region=north", now, rollup.Plan{Table: "touchpoint_1h", Resolution: time.Hour,
			From: at(9, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(8, 11, 0, 0)}},
		{"window=7d&by=region&touchpoint=checkout&segment=consumer", now, rollup.Plan{Table: "detail_1h", Resolution: time.Hour,
			From: at(3, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(3, 11, 0, 0).AddDate(0, 0, -7)}},
		{"window=1h&by=region&touchpoint=checkout", now, rollup.Plan{Table: "detail_1m", Resolution: time.Minute,
			From: at(10, 9, 18, 0), To: at(10, 10, 18, 0), PrevFrom: at(10, 8, 18, 0)}},
		{"window=7d&by=region", now, rollup.Plan{Table: "detail_1h", Resolution: time.Hour,
			From: at(3, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(3, 11, 0, 0).AddDate(0, 0, -7)}},
		// The clock's time zone does not matter: steps are UTC (India is 5:30 ahead).
		{"window=24h&region=north", now.In(time.FixedZone("IST", 5*3600+1800)), rollup.Plan{Table: "detail_1h", Resolution: time.Hour,
			From: at(9, 11, 0, 0), To: at(10, 11, 0, 0), PrevFrom: at(8, 11, 0, 0)}},
		{"window=30d", now.In(time.FixedZone("IST", 5*3600+1800)), rollup.Plan{Table: "overview_1h", Resolution: time.Hour,
			From: at(10, 11, 0, 0).AddDate(0, 0, -30), To: at(10, 11, 0, 0), PrevFrom: at(10, 11, 0, 0).AddDate(0, 0, -60)}},
	} {
		t.Run(tc.query+"@"+tc.now.Format("15:04:05.000Z07:00"), func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			q, err := rollup.ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			got := q.Plan(tc.now)
			if got.Table != tc.want.Table || got.Resolution != tc.want.Resolution || !got.From.Equal(tc.want.From) ||
				!got.To.Equal(tc.want.To) || !got.PrevFrom.Equal(tc.want.PrevFrom) {
				t.Errorf("Plan =\n%s %v [%v, %v) prev from %v\nwant\n%s %v [%v, %v) prev from %v",
					got.Table, got.Resolution, got.From, got.To, got.PrevFrom,
					tc.want.Table, tc.want.Resolution, tc.want.From, tc.want.To, tc.want.PrevFrom)
			}
			if got.To.Sub(got.From) != q.Window || got.From.Sub(got.PrevFrom) != q.Window || !got.PrevTo.Equal(got.From) {
				t.Errorf("Plan covers %v and [%v, %v), want the window %v and the one before it", got.To.Sub(got.From), got.PrevFrom, got.PrevTo, q.Window)
			}
			if got.To.Location() != time.UTC {
				t.Errorf("Plan.To is in %v, want UTC", got.To.Location())
			}
		})
	}
}

func TestTrendStep(t *testing.T) {
	for _, tc := range []struct {
		window, resolution, want time.Duration
	}{
		{time.Minute, time.Second, 2 * time.Second},
		{5 * time.Minute, time.Second, 10 * time.Second},
		{15 * time.Minute, time.Second, 30 * time.Second},
		{time.Minute, time.Minute, time.Minute}, // detail_1m: never finer than the table
		{15 * time.Minute, time.Minute, time.Minute},
		{time.Hour, time.Minute, time.Minute},
		{24 * time.Hour, time.Minute, 30 * time.Minute},
		{24 * time.Hour, time.Hour, time.Hour},
		{7 * 24 * time.Hour, time.Hour, 4 * time.Hour},
		{30 * 24 * time.Hour, 24 * time.Hour, 24 * time.Hour},
	} {
		if got := rollup.TrendStep(tc.window, tc.resolution); got != tc.want {
			t.Errorf("TrendStep(%v, %v) = %v, want %v", tc.window, tc.resolution, got, tc.want)
		}
		if n := tc.window / rollup.TrendStep(tc.window, tc.resolution); n > 60 {
			t.Errorf("TrendStep(%v, %v): %d points, want at most 60", tc.window, tc.resolution, n)
		}
	}
}

// TestPlanLastWeek checks compare=last_week: the same window 168 hours earlier, on a table that
// keeps a week (the 10-second overview instead of the one-second one), for every window.
func TestPlanLastWeek(t *testing.T) {
	now := time.Date(2026, 3, 10, 10, 17, 42, 500_000_000, time.UTC)
	for _, tc := range []struct {
		query string
		table string
	}{
		{"window=1m", "overview_10s"},
		{"window=15m&by=moment,channel", "overview_30s"},
		{"window=1h", "overview_2m"},
		{"window=24h", "overview_30m"},
		{"window=7d", "overview_1h"},
		{"window=30d", "overview_1h"},
		{"window=5m&region=north", "detail_1m"},
		{"window=1h&by=touchpoint", "detail_1m"},
		{"window=24h&by=touchpoint", "detail_1h"},
		{"window=7d&by=touchpoint", "detail_1h"},
		{"window=30d&by=touchpoint", "detail_1h"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query + "&compare=last_week")
			q, err := rollup.ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			p := q.Plan(now)
			if p.Table != tc.table {
				t.Errorf("table %s, want %s", p.Table, tc.table)
			}
			week := 7 * 24 * time.Hour
			if !p.PrevFrom.Equal(p.From.Add(-week)) || !p.PrevTo.Equal(p.To.Add(-week)) || p.To.Sub(p.From) != q.Window {
				t.Errorf("window [%v, %v), last week [%v, %v); want the window a week earlier", p.From, p.To, p.PrevFrom, p.PrevTo)
			}
			if !p.To.After(now) || p.To.Sub(now) > p.Resolution {
				t.Errorf("window ends at %v, want the end of the step holding %v", p.To, now)
			}
			if q.Comparison() != "last_week" {
				t.Errorf("Comparison() = %q, want last_week", q.Comparison())
			}
		})
	}
}
