package store_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/truthboard/truthboard/internal/annotation"
	"github.com/truthboard/truthboard/internal/demo"
	"github.com/truthboard/truthboard/internal/rollup"
	"github.com/truthboard/truthboard/internal/store"
	"github.com/truthboard/truthboard/internal/store/storetest"
)

// TestAnnotations writes, changes and deletes annotations and reads back what a user would
// see: the latest state of each, deleted ones gone, filters by time, tags and scope.
func TestAnnotations(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	release := annotation.Annotation{ID: "a1", Time: ms(0), TimeEnd: ms(0), Tags: []string{"release", "web"}, Text: "release 4.2", Created: ms(0)}
	outage := annotation.Annotation{ID: "a2", Time: ms(time.Hour), TimeEnd: ms(2 * time.Hour), Tags: []string{"incident"}, Text: "voice outage", Channel: "voice", Created: ms(0)}
	campaign := annotation.Annotation{ID: "a3", Time: ms(3 * time.Hour), TimeEnd: ms(3 * time.Hour), Tags: []string{}, Text: "campaign", Moment: "zmot", Created: ms(0)}
	// The stamp the live cache checks before reloading moves with every write.
	stamp := func() int64 {
		t.Helper()
		v, err := s.AnnotationsStamp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	last := stamp()
	moved := func(what string) {
		t.Helper()
		if now := stamp(); now == last {
			t.Errorf("the annotations' stamp stayed at %d after %s: the live caches would not reload", now, what)
		} else {
			last = now
		}
	}
	for i, a := range []annotation.Annotation{release, outage, campaign} {
		if err := s.WriteAnnotation(ctx, a, base.Add(time.Duration(i)*time.Second), false); err != nil {
			t.Fatal(err)
		}
		moved("a create")
	}
	// A change, then a delete of another: each a later version.
	changed := outage
	changed.Text, changed.TimeEnd = "voice outage, fixed at 11:30", ms(90*time.Minute)
	if err := s.WriteAnnotation(ctx, changed, base.Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	moved("a change")
	if err := s.WriteAnnotation(ctx, campaign, base.Add(2*time.Minute), true); err != nil {
		t.Fatal(err)
	}
	moved("a delete")

	got, found, err := s.Annotation(ctx, "a2")
	if err != nil || !found {
		t.Fatalf("Annotation(a2): found %v, %v", found, err)
	}
	changed.Updated = base.Add(time.Minute).UnixMilli()
	if !reflect.DeepEqual(got, changed) {
		t.Errorf("a2 after its change:\n got %+v\nwant %+v", got, changed)
	}
	if _, found, err := s.Annotation(ctx, "a3"); err != nil || found {
		t.Errorf("deleted a3: found %v, %v; want not found", found, err)
	}

	all := annotation.Filter{From: base.Add(-time.Hour), To: base.Add(10 * time.Hour), Limit: 100}
	for _, c := range []struct {
		name string
		f    func(f *annotation.Filter)
		want []string
	}{
		{"all, latest first", func(*annotation.Filter) {}, []string{"a2", "a1"}},
		{"a region overlapping from", func(f *annotation.Filter) { f.From = base.Add(80 * time.Minute) }, []string{"a2"}},
		{"after the changed end", func(f *annotation.Filter) { f.From = base.Add(100 * time.Minute) }, []string{}},
		{"every tag", func(f *annotation.Filter) { f.Tags = []string{"release", "web"} }, []string{"a1"}},
		{"a missing tag", func(f *annotation.Filter) { f.Tags = []string{"release", "voice"} }, []string{}},
		{"channel voice: scoped and unscoped", func(f *annotation.Filter) { f.Channel = "voice" }, []string{"a2", "a1"}},
		{"channel web: the unscoped one", func(f *annotation.Filter) { f.Channel = "web" }, []string{"a1"}},
		{"limit", func(f *annotation.Filter) { f.Limit = 1 }, []string{"a2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := all
			c.f(&f)
			list, err := s.Annotations(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, a := range list {
				ids = append(ids, a.ID)
			}
			if !reflect.DeepEqual(ids, c.want) {
				t.Errorf("ids %v, want %v", ids, c.want)
			}
		})
	}
	recent, err := s.RecentAnnotations(ctx, base.Add(30*time.Minute), annotation.MaxCached)
	if err != nil || len(recent) != 1 || recent[0].ID != "a2" {
		t.Errorf("RecentAnnotations since 10:30: %+v, %v; want a2 only", recent, err)
	}
}

// TestAnnotationQueriesOnModernClickHouse runs the annotations' reads on modern ClickHouse (the
// rest of the suite runs them on 18.16): a changed annotation reads as its latest version, a
// deleted one not at all, filters by tag and channel.
func TestAnnotationQueriesOnModernClickHouse(t *testing.T) {
	statements := append(MigrationStatements(t),
		`INSERT INTO annotations (id, time_ms, time_end_ms, tags, text, moment, channel, created_ms, version, deleted) VALUES
		 ('a1', 1000, 1000, ['release'], 'old text', '', '', 1, 1, 0),
		 ('a1', 1000, 1000, ['release', 'web'], 'new text', '', '', 1, 2, 0),
		 ('a2', 2000, 3000, ['incident'], 'outage', '', 'voice', 1, 1, 0),
		 ('a3', 2000, 2000, ['release'], 'gone', '', '', 1, 1, 0),
		 ('a3', 2000, 2000, ['release'], 'gone', '', '', 1, 2, 1)`)
	bind := func(f annotation.Filter) string {
		sql, args := store.AnnotationsSQL(f)
		for _, a := range args {
			v := fmt.Sprint(a)
			switch x := a.(type) {
			case string:
				v = "'" + x + "'"
			case []string:
				v = "['" + strings.Join(x, "', '") + "']"
			}
			sql = strings.Replace(sql, "?", v, 1)
		}
		return sql
	}
	all := annotation.Filter{From: time.UnixMilli(0), To: time.UnixMilli(10_000), Limit: 10}
	tagged, voice := all, all
	tagged.Tags, voice.Channel = []string{"release", "web"}, "web"
	rep := RunOnModernClickHouse(t, statements, []string{bind(all), bind(tagged), bind(voice)})
	ids := func(q CompatResult) string {
		var out []string
		for _, r := range q.Rows {
			out = append(out, string(r["id"]))
		}
		return strings.Join(out, " ")
	}
	for i, want := range []string{`"a2" "a1"`, `"a1"`, `"a1"`} {
		if got := ids(rep.Queries[i]); got != want {
			t.Errorf("query %d on modern ClickHouse: ids %s, want %s", i, got, want)
		}
	}
	if got := string(rep.Queries[1].Rows[0]["argMax(text, version)"]); got != `"new text"` {
		t.Errorf("a1's text on modern ClickHouse: %s, want its latest", got)
	}
}

// BenchmarkAnnotations measures what annotations add to a node's work: the reload of the live
// feeds' cache (when its stamp moved), the stamp it reads once per tick per node (whatever the
// number of screens), and a list, with
// 50,000 annotations in the table (about five weeks of one credential at the default 60
// changes a minute, non-stop), 2,000 of them in the cache's 31 days, each written twice (a
// change); against, in the same run, the query of one executive screen's tick (5 minutes by
// moment and channel with the previous period, in trend steps) over an hour of demo traffic at
// 40 events/s:
//
//	go test -run '^$' -bench Annotations -benchtime 100x ./internal/store/
func BenchmarkAnnotations(b *testing.B) {
	s := storetest.Open(b)
	ctx := context.Background()
	now := time.Now().UTC()
	cfg := demo.DefaultConfig()
	cfg.Rate = 40
	gen, err := demo.NewGenerator(cfg, now.Add(-time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	for t := now.Add(-50 * time.Minute); !t.After(now); t = t.Add(10 * time.Minute) {
		if err := s.InsertEvents(ctx, gen.Due(t, 1<<30), t); err != nil {
			b.Fatal(err)
		}
	}
	// 50,000 annotations a minute apart back from now, two versions each.
	for version := 1; version <= 2; version++ {
		err := s.Conn().Exec(ctx, fmt.Sprintf(`INSERT INTO annotations (id, time_ms, time_end_ms, tags, text, moment, channel, created_ms, version, deleted)
			SELECT lower(hex(toUInt64(number))), %[1]d - number * 60000, %[1]d - number * 60000 + (number %% 3) * 600000,
				if(number %% 2 = 0, ['release', 'web'], ['incident']), concat('annotation ', toString(number)),
				'', if(number %% 5 = 0, 'voice', ''), %[1]d, %[2]d, 0
			FROM system.numbers LIMIT 50000`, now.UnixMilli(), version))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("cache-reload", func(b *testing.B) {
		for b.Loop() {
			list, err := s.RecentAnnotations(ctx, now.Add(-annotation.Horizon), annotation.MaxCached)
			if err != nil || len(list) != annotation.MaxCached {
				b.Fatalf("%d annotations, %v", len(list), err)
			}
		}
	})
	b.Run("cache-stamp", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AnnotationsStamp(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("list-by-tag", func(b *testing.B) {
		f := annotation.Filter{From: now.Add(-24 * time.Hour), To: now, Tags: []string{"release"}, Limit: annotation.DefaultList}
		for b.Loop() {
			if _, err := s.Annotations(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-screen-tick", func(b *testing.B) {
		q, err := rollup.ParseQuery(map[string][]string{"window": {"5m"}})
		if err != nil {
			b.Fatal(err)
		}
		q.By, q.Compare = []string{"moment", "channel"}, true
		p := q.Plan(now)
		q.Step = rollup.TrendStep(q.Window, p.Resolution)
		for b.Loop() {
			if _, err := s.Rollup(ctx, q, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
