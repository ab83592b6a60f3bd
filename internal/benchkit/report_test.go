package benchkit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/truthboard/truthboard/internal/benchkit"
)

func TestReplaceSection(t *testing.T) {
	const section = "## Ingest\n\nnew figures\n"
	tests := []struct {
		name, doc, want string
	}{
		{"empty file", "", section},
		{"appended after other sections", "# Benchmarks\n\nintro\n\n## Metrics\n\nm\n",
			"# Benchmarks\n\nintro\n\n## Metrics\n\nm\n\n" + section},
		{"replaced in the middle", "# B\n\n## Ingest\n\nold\n\n## Metrics\n\nm\n",
			"# B\n\n" + section + "\n## Metrics\n\nm\n"},
		{"replaced at the end", "# B\n\n## Metrics\n\nm\n\n## Ingest\n\nold\nolder\n",
			"# B\n\n## Metrics\n\nm\n\n" + section},
		{"heading inside a code fence is not a section", "# B\n\n## Ingest\n\n```\n## Metrics\n```\n\n## Live\n\nl\n",
			"# B\n\n" + section + "\n## Live\n\nl\n"},
		{"a longer heading is another section", "# B\n\n## Ingest latency\n\nx\n",
			"# B\n\n## Ingest latency\n\nx\n\n" + section},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := benchkit.ReplaceSection(tt.doc, "Ingest", section); got != tt.want {
				t.Errorf("ReplaceSection:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestWriteSection(t *testing.T) {
	for _, c := range []struct {
		name, old, want string
	}{
		{"new file", "", benchkit.Intro + "\n## Metrics\n\nnew\n"},
		{"appended", "# B\n\n## Ingest\n\ningest\n", "# B\n\n## Ingest\n\ningest\n\n## Metrics\n\nnew\n"},
		{"replaced, others kept", "# B\n\n## Metrics\n\nold\n\n## Ingest\n\ningest\n", "# B\n\n## Metrics\n\nnew\n\n## Ingest\n\ningest\n"},
		{"last, replaced", "# B\n\n## Ingest\n\ningest\n\n## Metrics\n\nold\n### Sub\n\nold\n", "# B\n\n## Ingest\n\ningest\n\n## Metrics\n\nnew\n"},
		{"heading in a fence is text", "## Metrics\n\n```\n## Ingest\n```\n\n## Ingest\n\ni\n", "## Metrics\n\nnew\n\n## Ingest\n\ni\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "benchmarks.md")
			if c.old != "" {
				if err := os.WriteFile(path, []byte(c.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := benchkit.WriteSection(path, "Metrics", "## Metrics\n\nnew\n"); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestSection(t *testing.T) {
	doc := "# B\n\n## Live\n\nbody\n### Sub\n\nsub\n\n## Metrics\n\nm\n"
	if got, ok := benchkit.Section(doc, "Live"); !ok || got != "\nbody\n### Sub\n\nsub\n\n" {
		t.Errorf("Section(Live) = %q, %v", got, ok)
	}
	if got, ok := benchkit.Section(doc, "Metrics"); !ok || got != "\nm\n" {
		t.Errorf("Section(Metrics) = %q, %v", got, ok)
	}
	if _, ok := benchkit.Section(doc, "Soak"); ok {
		t.Error("Section(Soak) found in a document without it")
	}
}

func TestCommandLine(t *testing.T) {
	got := benchkit.CommandLine("soak", []string{"-duration", "5m", "-out", "docs/benchmarks.md", "-note", "it's a test", ""})
	want := `go run ./cmd/truthboard-tools soak -duration 5m -out docs/benchmarks.md -note 'it'\''s a test' ''`
	if got != want {
		t.Errorf("CommandLine = %s\nwant          %s", got, want)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -20000: "-20,000", 36_000_000: "36,000,000"} {
		if got := benchkit.Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if got := benchkit.Thousands(uint64(1_000_000)); got != "1,000,000" {
		t.Errorf("Thousands(uint64 1e6) = %q", got)
	}
}
