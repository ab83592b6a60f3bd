package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDrilldownNegatives drives the drill-down's latest negative moments in chromium: the list
// follows the drill path in the URL, shows a new negative moment on top with its reason,
// keeps the rows it already had (the same DOM nodes: no flicker) and greys out offline.
func TestDrilldownNegatives(t *testing.T) {
	s := startLive(t, 200*time.Millisecond, time.Second)
	ev := func(id, channel, scores string, at time.Time) string {
		return fmt.Sprintf(`{"event_id":%q,"occurred_at":%q,"moment":"service","channel":%q,"touchpoint":"billing_call",`+
			`"region":"north","segment":"smb","agent_team":"tier 1"%s}`, id, at.Format(time.RFC3339Nano), channel, scores)
	}
	now := time.Now().UTC()
	s.mustPost(t, jsonArray([]string{
		ev("first", "voice", `,"csat":2,"nps":9`, now.Add(-30*time.Second)),
		ev("happy", "voice", `,"csat":5`, now.Add(-20*time.Second)),
		ev("chat", "chat", `,"outcome":"failed"`, now.Add(-10*time.Second)),
	})).accepted(t, 3, 0)

	bctx := browser(t)
	p := openPage(t, bctx, s.url+"/drilldown?token="+adminToken+"&moment=service&channel=voice")
	const rowsJS = `[...document.querySelectorAll('#negatives tbody tr[data-event-id]')].map(r => r.dataset.eventId).join(' ')`
	p.wait("the cell's negative moment", rowsJS+` === 'first'`)
	got := eval[[]string](p, `[...document.querySelector('#negatives tr[data-event-id="first"]').cells].map(c => c.textContent)`)
	if len(got) != 9 || got[1] != "service · voice · billing_call" || got[2] != "csat 2" || got[3] != "2" || got[4] != "9" ||
		got[5] != "—" || got[8] != "north · smb · tier 1" || !strings.Contains(got[0], ":") {
		t.Errorf("row of the negative moment: %q", got)
	}
	p.do(chromedp.Evaluate[chromedp.Void](`void (window.firstRow = document.querySelector('#negatives tr[data-event-id="first"]'))`))

	s.mustPost(t, jsonArray([]string{ev("second", "voice", `,"outcome":"abandoned","sentiment":-0.5`, time.Now().UTC())})).accepted(t, 1, 0)
	p.wait("the new negative moment on top", rowsJS+` === 'second first'`)
	if same := eval[bool](p, `window.firstRow.isConnected && window.firstRow === document.querySelector('#negatives tr[data-event-id="first"]')`); !same {
		t.Errorf("the existing row was re-created: rows must be kept across ticks")
	}
	if reason := eval[string](p, `document.querySelector('#negatives tr[data-event-id="second"] td.reason').textContent`); reason != "sentiment -0.5, outcome abandoned" {
		t.Errorf("reason %q", reason)
	}

	// Up the drill path: all channels of the moment, the chat one included, newest first.
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#path a:nth-of-type(2)').click()`))
	p.wait("all channels of the moment", rowsJS+` === 'second chat first'`)

	s.hub.Close()
	p.wait("greyed offline", `document.body.classList.contains('greyed') && getComputedStyle(document.querySelector('#negatives tbody')).opacity < 1`)
	if n := eval[int](p, `document.querySelectorAll('#negatives tbody tr[data-event-id]').length`); n != 3 {
		t.Errorf("offline: %d rows, want the last 3 kept", n)
	}
	p.checkClean()
}
