package main

import (
	"testing"
	"time"
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
			if got := replaceSection(tt.doc, "Ingest", section); got != tt.want {
				t.Errorf("replaceSection:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentilesOf(d)
	if p.P50 != 50*time.Millisecond || p.P90 != 90*time.Millisecond || p.P99 != 99*time.Millisecond || p.Max != 100*time.Millisecond {
		t.Errorf("percentiles of 1..100 ms = %+v", p)
	}
	if got := percentilesOf(nil); got != (percentiles{}) {
		t.Errorf("percentiles of nothing = %+v", got)
	}
}

func TestNum(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -20000: "-20,000"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}
