package benchdoc_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/truthboard/truthboard/internal/benchdoc"
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
			if got := benchdoc.ReplaceSection(tt.doc, "Ingest", section); got != tt.want {
				t.Errorf("ReplaceSection:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestWriteSection(t *testing.T) {
	for _, c := range []struct {
		name, old, want string
	}{
		{"new file", "", benchdoc.Intro + "\n## Metrics\n\nnew\n"},
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
			if err := benchdoc.WriteSection(path, "Metrics", "## Metrics\n\nnew\n"); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}
