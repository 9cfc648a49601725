package integration

// The demo ("the first five minutes"): Caddyfile.example as written (only
// its address moved to a free port) serving demo/index.html to headless
// Chromium. The page shows a notifications feed, a dashboard, a job's
// progress and an AI-style token stream, publishes them itself, shows
// history on first load (replay_on_connect) and keeps the answer's place
// across a reload. Screenshots go to integration/artifacts/.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// openDemoAt is openDemo at a path of its own ("/" runs the dashboard timer).
func openDemoAt(t *testing.T, browser context.Context, c *caddyProc, path string) *demoPage {
	t.Helper()
	p := &demoPage{tab: newTab(t, browser), c: c}
	p.do("load the demo page", chromedp.Navigate(c.base+path))
	p.waitOpen("the demo page's stream opens")
	p.instrument()
	return p
}

// screenshot saves the whole page as artifacts/<name>.
func screenshot(t *testing.T, p *tab, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactsDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// seenOf keeps the events of one type.
func seenOf(evs []seenEvent, typ string) []seenEvent {
	var out []seenEvent
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// checkTopicLabels checks that every item of the page's event log shows
// the topic its event belongs to, and that the log has each of topics.
func checkTopicLabels(t *testing.T, p *demoPage, topics ...string) {
	t.Helper()
	type item struct{ Topic, Type string }
	items := eval[[]item](p.tab, `Array.from(document.querySelectorAll('#events li:not(.empty)')).map(li => ({
		Topic: li.querySelector('.topic') ? li.querySelector('.topic').textContent : '',
		Type: li.querySelector('.type') ? li.querySelector('.type').textContent : '',
	}))`)
	have := map[string]bool{}
	for _, it := range items {
		if want := demoTopicOf[it.Type]; it.Topic != want {
			t.Errorf("a %q event in the log is labelled topic %q, want %q", it.Type, it.Topic, want)
		}
		have[it.Topic] = true
	}
	for _, tp := range topics {
		if !have[tp] {
			t.Errorf("the event log shows no event of topic %q (%d items)", tp, len(items))
		}
	}
}

func TestDemo(t *testing.T) {
	browser := newBrowser(t)
	c := startCaddy(t, exampleSite(t))
	pub := c.base + "/_sse/publish"

	// History, published before any page is open, as apps would have.
	for i := 1; i <= 7; i++ {
		publishJSON(t, pub, map[string]any{"topic": "notifications", "data": fmt.Sprintf("note %d", i)})
	}
	for i := range 35 {
		publishJSON(t, pub, map[string]any{"topic": "metrics", "event": "reading",
			"data": map[string]any{"users": 100 + i, "rps": 20 + i%7, "p95": 80 + i%5}})
	}
	for _, pc := range []int{10, 20, 30} {
		publishJSON(t, pub, map[string]any{"topic": "jobs", "event": "progress",
			"data": map[string]any{"job": "nightly build", "percent": pc, "stage": "compiling"}})
	}
	publishJSON(t, pub, map[string]any{"topic": "answers", "event": "question", "data": map[string]any{"run": "hist", "q": "What is SSE?"}})
	for i, tok := range []string{"Server", "-Sent", " Events."} {
		publishJSON(t, pub, map[string]any{"topic": "answers", "event": "token", "data": map[string]any{"run": "hist", "i": i, "t": tok}})
	}
	publishJSON(t, pub, map[string]any{"topic": "answers", "event": "done", "data": map[string]any{"run": "hist", "n": 3}})

	if !t.Run("history on first load", func(t *testing.T) {
		p := openDemo(t, browser, c) // ?paused: the page publishes nothing itself
		const initial = 5 + 30 + 1 + 5
		p.waitJS("the initial state of every topic", fmt.Sprintf(`window.sseDemo.seen.length >= %d`, initial))
		got := p.seen()
		if len(got) != initial {
			t.Fatalf("the page saw %d events first, want %d (replay_on_connect 5 + 30 + 1 + 200 of 5)", len(got), initial)
		}
		var last uint64
		for i, e := range got {
			if _, seq := splitID(t, e.ID); seq <= last {
				t.Fatalf("event %d (%s) is not after the one before: the initial state is not in id order", i, e.ID)
			} else {
				last = seq
			}
		}
		notes := seenOf(got, "message")
		if len(notes) != 5 || notes[0].Data != "note 3" || notes[4].Data != "note 7" {
			t.Fatalf("notifications first: %+v, want note 3..7", notes)
		}
		if n := len(seenOf(got, "reading")); n != 30 {
			t.Fatalf("%d readings first, want 30", n)
		}
		if p := seenOf(got, "progress"); len(p) != 1 || !strings.Contains(p[0].Data, `"percent":30`) {
			t.Fatalf("job progress first: %+v, want the newest (30%%)", p)
		}
		// The widgets show it.
		type widgets struct {
			Notes                            []string
			Users, Percent, Answer, Question string
		}
		w := eval[widgets](p.tab, `({
			Notes: Array.from(document.querySelectorAll('#notifications li .text')).map(e => e.textContent),
			Users: document.getElementById('mUsers').textContent,
			Percent: document.getElementById('jobPercent').textContent,
			Answer: document.getElementById('answer').textContent,
			Question: document.getElementById('answerQ').textContent,
		})`)
		if !slices.Equal(w.Notes, []string{"note 7", "note 6", "note 5", "note 4", "note 3"}) || w.Users != "134" ||
			w.Percent != "30%" || w.Answer != "Server-Sent Events." || w.Question != "Q: What is SSE?" {
			t.Fatalf("the widgets after the first load show %+v", w)
		}
		checkTopicLabels(t, p, "notifications", "metrics", "jobs", "answers")
		screenshot(t, p.tab, "demo-history.png")
	}) {
		return
	}

	t.Run("the page publishes and shows everything live", func(t *testing.T) {
		p := openDemoAt(t, browser, c, "/")
		p.waitJS("the history", `window.sseDemo.seen.length >= 41`)

		// The dashboard: this tab is elected to publish a reading a second.
		p.waitJS("two readings published by this page",
			`window.sseDemo.seen.filter(e => e.type === 'reading').length >= 32`)
		if note := eval[string](p.tab, `document.getElementById('readingsNote').textContent`); !strings.Contains(note, "this tab") {
			t.Errorf("the dashboard says %q, want it published by this tab", note)
		}
		// The tiles follow the newest reading (awaited: the next may be on its way).
		p.waitJS("the tiles showing the newest reading", `(() => {
			const r = window.sseDemo.seen.filter(e => e.type === 'reading');
			return document.getElementById('mUsers').textContent === String(JSON.parse(r[r.length - 1].data).users);
		})()`)

		// A notification, with the button.
		p.do("send a notification",
			chromedp.SetValue(chromedp.ID("notifyText"), "Hello from the browser test"),
			chromedp.Click(chromedp.ID("notifyBtn")))
		p.waitJS("the notification on top of the feed",
			`document.querySelector('#notifications li .text').textContent === 'Hello from the browser test'`)

		// One event to two topics: one id, shown once.
		r := publishJSON(t, pub, map[string]any{"topics": []string{"notifications", "jobs"}, "data": "to two topics"})
		p.waitJS("the two-topic event", `window.sseDemo.seen.some(e => e.data === 'to two topics')`)
		if n := eval[int](p.tab, `window.sseDemo.seen.filter(e => e.data === 'to two topics').length`); n != 1 {
			t.Errorf("an event of two topics was shown %d times", n)
		}
		if r.Delivered != 1 { // the first tab closed with its subtest
			t.Errorf("the two-topic event was delivered to %d subscribers, want 1 (this tab)", r.Delivered)
		}

		// A job, with the button: 0..100% in steps of 5, each once, in order.
		p.do("start a job", chromedp.Click(chromedp.ID("startJob")))
		p.waitJS("the job at 100%", `document.getElementById('jobPercent').textContent === '100%' &&
			document.getElementById('jobCard').dataset.done === 'true'`)
		job := eval[string](p.tab, `document.getElementById('jobName').textContent`)
		var percents []string
		for _, e := range seenOf(p.seen(), "progress") {
			if strings.Contains(e.Data, `"job":"`+job+`"`) {
				_, after, _ := strings.Cut(e.Data, `"percent":`)
				percents = append(percents, strings.SplitN(after, ",", 2)[0])
			}
		}
		if want := strings.Fields("0 5 10 15 20 25 30 35 40 45 50 55 60 65 70 75 80 85 90 95 100"); !slices.Equal(percents, want) {
			t.Errorf("progress of %q: %v, want 0..100 by 5", job, percents)
		}

		checkTopicLabels(t, p, "notifications", "metrics", "jobs", "answers")

		// The answer: every token published once, in order, whatever the
		// reload in the middle does to the publishing page.
		// (Resuming from now: a fresh connect would get replay_on_connect's history first.)
		tokens := subscribe(t, client, c.base+"/events?topic=answers", "Last-Event-ID: "+c.stats(t, "default").LastID).ready()
		p.do("ask", chromedp.Click(chromedp.ID("ask")))
		p.waitJS("a dozen tokens", `(() => { const a = JSON.parse(sessionStorage.getItem('caddy-sse-demo-state')).answer;
			return a && !a.partial && a.q && a.tokens >= 12; })()`)
		screenshot(t, p.tab, "demo-streaming.png")
		before := eval[int](p.tab, `JSON.parse(sessionStorage.getItem('caddy-sse-demo-state')).answer.tokens`)
		p.do("reload in the middle of the answer", chromedp.Reload())
		p.waitOpen("the reloaded page's stream opens")
		if reqs := p.streamRequests(); !strings.Contains(reqs[len(reqs)-1].URL, "last_event_id=") {
			t.Errorf("the reloaded page connected to %s, want a resume (last_event_id=)", reqs[len(reqs)-1].URL)
		}
		p.waitJS("the answer to finish", `document.getElementById('answerCard').dataset.streaming === 'false' &&
			document.getElementById('answerNote').textContent.endsWith('done')`)
		answer := eval[string](p.tab, `ANSWER`)
		if got := eval[string](p.tab, `document.getElementById('answer').textContent`); got != answer {
			t.Errorf("after the reload the page shows\n%q\nwant\n%q", got, answer)
		}
		if errs := eval[any](p.tab, `window.sseDemo.tokenErrors || null`); errs != nil {
			t.Errorf("the page saw tokens out of order (lost or repeated): %v", errs)
		}
		after := seenOf(p.seen(), "token")
		if len(after) == 0 || strings.Contains(after[0].Data, `"i":0,`) {
			t.Errorf("after the reload the page got tokens %v: the reload did not happen mid-answer (had %d)", after, before)
		}
		// What was published: question, each token once, done.
		n := len(strings.Fields(answer))
		for i := -1; i <= n; i++ {
			ev := tokens.next()
			switch {
			case i == -1 && ev.Type != "question", i == n && ev.Type != "done":
				t.Fatalf("published event %d is %s %q", i, ev.Type, ev.Data)
			case i >= 0 && i < n && (ev.Type != "token" || !strings.Contains(ev.Data, fmt.Sprintf(`"i":%d,`, i))):
				t.Fatalf("published token %d is %s %q (lost or repeated)", i, ev.Type, ev.Data)
			}
		}
		checkTopicLabels(t, p, "answers") // the log kept across the reload
		screenshot(t, p.tab, "demo-live.png")

		// A phone-sized viewport: one column, nothing wider than the screen.
		p.do("a narrow viewport", chromedp.EmulateViewport(390, 844))
		if w := eval[int](p.tab, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("at 390 px wide the page is %d px wide", w)
		}
		screenshot(t, p.tab, "demo-mobile.png")
	})
}
