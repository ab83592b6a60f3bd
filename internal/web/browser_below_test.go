package web_test

// Browser test of the drill-down's level below a touchpoint: its regions and its teams,
// compared with the previous period, sortable and exportable.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// regionEvents are n events of service × voice on touchpoint from at on, 300 ms apart, in
// region, top2 of them with csat 5 (the others csat 2), spread evenly; their agent team
// alternates between billing (even) and retention (odd).
func regionEvents(prefix, touchpoint, region string, at time.Time, n, top2 int) []string {
	evs := make([]string, 0, n)
	for i := range n {
		csat, team := 2, "billing"
		if (i*top2)%n < top2 {
			csat = 5
		}
		if i%2 == 1 {
			team = "retention"
		}
		evs = append(evs, fmt.Sprintf(`{"event_id":"%s-%d","occurred_at":%q,"moment":"service","channel":"voice","touchpoint":%q,"region":%q,"agent_team":%q,"csat":%d}`,
			prefix, i, at.Add(time.Duration(i)*300*time.Millisecond).Format(time.RFC3339Nano), touchpoint, region, team, csat))
	}
	return evs
}

// belowRowsJS reads a table below the touchpoint as a user does: per row, its name, its
// events, and its CSAT with its change and that change's colour.
const belowRowsJS = `[...document.querySelectorAll('#%s tbody tr[data-member]')].map(r =>
	[r.cells[0].textContent, r.cells[1].firstChild.textContent, r.cells[2].firstChild.textContent,
	 ...[...r.cells[2].querySelectorAll('.change')].map(c => c.className + ':' + c.textContent)].join(' | '))`

// TestDrilldownBelowTouchpoint: a click on a touchpoint in the drill-down's comparison shows its
// regions and its agent teams, each with its events (n), CSAT and its change against the
// previous period coloured only when significant; the tables sort, and each exports as CSV.
func TestDrilldownBelowTouchpoint(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	now := time.Now().UTC().Truncate(time.Second)
	prev, cur := now.Add(-7*time.Minute-20*time.Second), now.Add(-2*time.Minute-20*time.Second)
	var evs []string
	// billing_call: north drops from 80% to 50% CSAT on 200 answers a side, south stays at 70%
	// on 100; tech_support_call is the sibling the comparison also lists.
	evs = append(evs, regionEvents("north-prev", "billing_call", "north", prev, 200, 160)...)
	evs = append(evs, regionEvents("north-cur", "billing_call", "north", cur, 200, 100)...)
	evs = append(evs, regionEvents("south-prev", "billing_call", "south", prev, 100, 70)...)
	evs = append(evs, regionEvents("south-cur", "billing_call", "south", cur, 100, 70)...)
	evs = append(evs, regionEvents("tech-cur", "tech_support_call", "east", cur, 50, 40)...)
	s.mustPost(t, jsonArray(evs)).accepted(t, len(evs), 0)
	s.settle(t)

	bctx := browser(t)
	p := openSized(t, bctx, s.url+"/drilldown?token="+adminToken+"&window=5m&moment=service&channel=voice", 1920, 1080, 1)
	p.wait("the touchpoints of voice", `[...document.querySelectorAll('#members tbody tr[data-member]')].map(r => r.dataset.member).join() === 'billing_call,tech_support_call'`)
	if hidden := eval[bool](p, `document.getElementById('below').hidden`); !hidden {
		t.Errorf("regions and teams shown before a touchpoint is chosen")
	}

	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#members tr[data-member="billing_call"]').click()`))
	p.wait("billing_call's regions and teams", `new URLSearchParams(location.search).get('touchpoint') === 'billing_call' &&
		!document.getElementById('below').hidden &&
		document.querySelectorAll('#regions tbody tr[data-member]').length === 2 &&
		document.querySelectorAll('#teams tbody tr[data-member]').length === 2`)
	if title := eval[string](p, `document.getElementById('below-title').textContent`); !strings.HasPrefix(title, "Regions and teams of billing_call") {
		t.Errorf("title %q, want it to name billing_call", title)
	}
	regions := eval[[]string](p, fmt.Sprintf(belowRowsJS, "regions"))
	want := []string{"north | 200 | 50.0% | change bad:▼ −30.0 pts", "south | 100 | 70.0% | change flat:±0.0 pts"}
	if strings.Join(regions, "\n") != strings.Join(want, "\n") {
		t.Errorf("regions:\n%s\nwant, by events:\n%s", strings.Join(regions, "\n"), strings.Join(want, "\n"))
	}
	// Each team has every other event of each region: 150 a side.
	teams := eval[[]string](p, fmt.Sprintf(belowRowsJS, "teams"))
	if len(teams) != 2 || !strings.Contains(teams[0], " | 150 | ") || !strings.Contains(teams[1], " | 150 | ") {
		t.Errorf("teams %q, want billing and retention with 150 events each", teams)
	}
	for _, row := range teams {
		if !strings.HasPrefix(row, "billing |") && !strings.HasPrefix(row, "retention |") {
			t.Errorf("team row %q, want billing or retention", row)
		}
	}

	// Sorting by CSAT puts south first, then north; again reverses.
	order := func() string {
		return strings.Join(eval[[]string](p, `[...document.querySelectorAll('#regions tbody tr[data-member]')].map(r => r.dataset.member)`), " ")
	}
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#regions th[data-key="csat"]').click()`))
	if got := order(); got != "south north" {
		t.Errorf("regions sorted by CSAT: %q, want south north", got)
	}
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#regions th[data-key="csat"]').click()`))
	if got := order(); got != "north south" {
		t.Errorf("regions sorted by CSAT again: %q, want north south", got)
	}

	// Each table exports as CSV: the touchpoint's regions and their total.
	dir := t.TempDir()
	allowDownloads(t, p, dir)
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('export-region').click()`))
	p.wait("the regions' download", `document.getElementById('export-region').dataset.file !== undefined`)
	lines := strings.Split(strings.TrimSpace(string(downloaded(dir, eval[string](p, `document.getElementById('export-region').dataset.file`)))), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], ",region,events,") || !strings.Contains(lines[1], ",north,200,") ||
		!strings.Contains(lines[2], ",south,100,") || !strings.Contains(lines[3], ",,300,") {
		t.Errorf("regions' CSV, want a header with region, north (200), south (100) and the total (300):\n%s", strings.Join(lines, "\n"))
	}
	p.checkClean()
}
