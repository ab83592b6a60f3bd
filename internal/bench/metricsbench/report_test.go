package metricsbench

import (
	"strings"
	"testing"
	"time"
)

// TestGrowthFromFullWindows checks that the growth table names, for each window, the sizes whose
// history spans it and the growth from the smallest of them, beside the growth over all sizes:
// at 10M events an hour, 1M events span 6 minutes, which is not a full 15-minute or 1-hour window.
func TestGrowthFromFullWindows(t *testing.T) {
	cfg := config{Sizes: []uint64{1_000_000, 10_000_000, 50_000_000}, Rate: 10_000_000, Windows: []string{"5m", "1h", "24h"}, Repeat: 1}
	hubMS := map[string][3]int{"5m": {4, 5, 6}, "1h": {2, 4, 5}, "24h": {3, 3, 4}}
	r := report{Cfg: cfg}
	for i, size := range cfg.Sizes {
		s := sizeResult{Round: 1, Size: size, Span: time.Duration(size/cfg.Rate) * time.Hour}
		if size < cfg.Rate {
			s.Span = 6 * time.Minute
		}
		for _, w := range cfg.Windows {
			ms := time.Duration(hubMS[w][i]) * time.Millisecond
			tick := func(n int) tickTimes {
				tt := tickTimes{Query: make([]time.Duration, n), Build: make([]time.Duration, n)}
				tt.Query[0] = ms
				return tt
			}
			s.Windows = append(s.Windows, windowResult{Name: w, API: []tickTimes{tick(nQueries)}, Hub: []tickTimes{tick(2)},
				Raw: [][nQueries]time.Duration{{time.Second}}})
		}
		r.Results = append(r.Results, s)
	}
	md := r.markdown()
	for _, want := range []string{
		"| 5m | 1 | 1M, 10M, 50M / 10M, 50M | 1M: 4.0, 10M: 5.0, 50M: 6.0 | 1.50× | 1M → 50M: 1.50× |",
		"| 1h | 1 | 10M, 50M / 50M | 1M: 2.0, 10M: 4.0, 50M: 5.0 | 2.50× | 10M → 50M: 1.25× |",
		"| 24h | 1 | none / none | 1M: 3.0, 10M: 3.0, 50M: 4.0 | 1.33× | – (no size spans it) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the growth table lacks\n%s\nin\n%s", want, md[strings.Index(md, "### Growth"):])
		}
	}
}
