package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A tab opened later gets the topics' history replayed: each event shows
// when it was published, not when this tab received it. The SSE wire
// carries no time, so the demo's events carry it in their data ("at"):
// the page stamps what it publishes, and an app may too. An event without
// one (plain text from curl) shows when it arrived, in italics.
func TestDemoReplayShowsPublishTime(t *testing.T) {
	browser := newBrowser(t)
	c := startCaddy(t, exampleSite(t))
	pub := c.base + "/_sse/publish"

	// Published long before any tab opens, by an app that stamps its events,
	// and by one that sends plain text.
	const past = "2025-03-04T05:06:07Z"
	publishJSON(t, pub, map[string]any{"topic": "notifications", "data": map[string]any{"text": "published long ago", "at": past}})
	publishJSON(t, pub, map[string]any{"topic": "metrics", "event": "reading",
		"data": map[string]any{"users": 7, "rps": 8, "p95": 9, "at": past}})
	publishJSON(t, pub, map[string]any{"topic": "notifications", "data": "plain text, no time"})

	// A first tab sends a notification with its button: the page stamps it.
	first := openDemo(t, browser, c)
	first.do("send a notification",
		chromedp.SetValue(chromedp.ID("notifyText"), "from the first tab"),
		chromedp.Click(chromedp.ID("notifyBtn")))
	first.waitJS("the first tab's notification", `window.sseDemo.seen.some(e => e.data.includes('from the first tab'))`)
	stamp := eval[string](first.tab, `JSON.parse(window.sseDemo.seen.find(e => e.data.includes('from the first tab')).data).at`)
	if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
		t.Fatalf("the page stamped its notification with at %q: %v", stamp, err)
	}

	// A tab opened later: its history is replayed.
	later := openDemo(t, browser, c)
	later.waitJS("the history", `window.sseDemo.seen.length >= 4`)
	type shown struct{ Text, Time, Class string }
	// timeOf is how this browser writes the time of day of an instant.
	timeOf := func(at string) string {
		return eval[string](later.tab, fmt.Sprintf(`new Date(%q).toLocaleTimeString()`, at))
	}
	dateOf := func(at string) string {
		return eval[string](later.tab, fmt.Sprintf(`new Date(%q).toLocaleDateString()`, at))
	}
	notes := eval[[]shown](later.tab, `Array.from(document.querySelectorAll('#notifications li')).map(li => ({
		Text: li.querySelector('.text').textContent,
		Time: li.querySelector('.time').textContent,
		Class: li.querySelector('.time').className,
	}))`)
	if len(notes) != 3 {
		t.Fatalf("the later tab shows notifications %+v, want the three published", notes)
	}
	// Newest first.
	if n := notes[0]; n.Text != "from the first tab" || n.Class != "time" || !strings.Contains(n.Time, timeOf(stamp)) {
		t.Errorf("the first tab's notification shows %+v, want the time it was published (%s)", n, timeOf(stamp))
	}
	if n := notes[1]; n.Text != "plain text, no time" || n.Class != "time received" {
		t.Errorf("the plain-text notification shows %+v, want the time it arrived, marked received", n)
	}
	if n := notes[2]; n.Text != "published long ago" || n.Class != "time" ||
		!strings.Contains(n.Time, timeOf(past)) || !strings.Contains(n.Time, dateOf(past)) {
		t.Errorf("the old notification shows %+v, want its publish time and date (%s %s)", n, dateOf(past), timeOf(past))
	}

	// The event log, likewise.
	logged := eval[[]shown](later.tab, `Array.from(document.querySelectorAll('#events li:not(.empty)')).map(li => ({
		Text: li.querySelector('.data').firstChild.textContent,
		Time: li.querySelector('.time').textContent,
		Class: li.querySelector('.time').className,
	}))`)
	old := 0
	for _, l := range logged {
		if strings.Contains(l.Text, `"at":"`+past+`"`) {
			old++
			if l.Class != "time" || !strings.Contains(l.Time, timeOf(past)) || !strings.Contains(l.Time, dateOf(past)) {
				t.Errorf("the event log shows %+v, want its publish time and date (%s %s)", l, dateOf(past), timeOf(past))
			}
		}
	}
	if old != 2 {
		t.Errorf("the event log shows %d of the two old events:\n%+v", old, logged)
	}
	screenshot(t, later.tab, "demo-replayed-times.png")
}
