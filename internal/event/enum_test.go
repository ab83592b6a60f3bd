package event

import (
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/truthboard/truthboard/clickhouse"
)

// TestVocabularyMatchesSchema keeps the lists of this package equal to the Enum8 columns of the
// ClickHouse schema, in order: the dashboards sort by that order and the values are stored as
// its numbers. The last migration that defines a column wins.
func TestVocabularyMatchesSchema(t *testing.T) {
	files, err := fs.Glob(clickhouse.Migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	slices.Sort(files)
	column := regexp.MustCompile(`(?s)\b(moment|channel|stage|outcome)\s+Enum8\(([^)]*)\)`)
	value := regexp.MustCompile(`'([^']*)'\s*=\s*(-?\d+)`)
	got := map[string][]string{}
	for _, name := range files {
		sql, err := fs.ReadFile(clickhouse.Migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range column.FindAllStringSubmatch(string(sql), -1) {
			var names []string
			for i, v := range value.FindAllStringSubmatch(m[2], -1) {
				n, _ := strconv.Atoi(v[2])
				want := i + 1
				if m[1] == "stage" || m[1] == "outcome" {
					want = i // optional: '' = 0 comes first
				}
				if n != want {
					t.Errorf("%s: %s: %q = %d, want %d (values numbered in list order)", name, m[1], v[1], n, want)
				}
				names = append(names, v[1])
			}
			got[m[1]] = names
		}
	}
	for _, c := range []struct {
		column string
		want   []string
	}{
		{"moment", Moments},
		{"channel", Channels},
		{"stage", append([]string{""}, Stages...)},
		{"outcome", append([]string{""}, Outcomes...)},
	} {
		if !slices.Equal(got[c.column], c.want) {
			t.Errorf("column %s is Enum8 of %s, want %s", c.column, strings.Join(got[c.column], ","), strings.Join(c.want, ","))
		}
	}
}
