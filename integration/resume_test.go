package integration

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// A subscriber that disconnects and resumes by Last-Event-ID, again and
// again while a publisher keeps going, ends with every event exactly once,
// in order.
func TestResumeAfterDisconnectLosesNothing(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	const total = 400

	first := subscribe(t, client, c.base+"/events?topic=news").ready()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			publishData(t, c.base+"/publish", "news", seqData(i))
		}
	}()

	var got []string
	lastID := ""
	s := first
	for reconnects := 0; len(got) < total; {
		ev := s.next()
		got = append(got, ev.Data)
		lastID = ev.LastEventID
		// Drop the connection every 50 events and resume from the last id.
		if len(got)%50 == 0 && len(got) < total {
			s.close()
			reconnects++
			s = subscribe(t, client, c.base+"/events?topic=news", "Last-Event-ID: "+lastID).ready()
		}
	}
	wg.Wait()
	for i, d := range got {
		if d != seqData(i) {
			t.Fatalf("event %d is %q, want %q (gap, duplicate or reorder)", i, d, seqData(i))
		}
	}
}

type resetData struct {
	Reason      string `json:"reason"`
	LastEventID string `json:"last_event_id"`
}

func TestResetEvents(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, `
http://127.0.0.1:{PORT} {
	sse /events {
		topic small {
			replay 3
		}
		topic big
	}
	sse_publish /publish
}
`)
	pub := c.base + "/publish"
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, publishData(t, pub, "small", seqData(i)).ID)
	}
	bigID := publishData(t, pub, "big", "b0").ID

	t.Run("evicted", func(t *testing.T) {
		s := subscribe(t, client, c.base+"/events?topic=small", "Last-Event-ID: "+ids[2]).ready()
		reset := s.next()
		var rd resetData
		if reset.Type != "reset" || json.Unmarshal([]byte(reset.Data), &rd) != nil || rd.Reason != "evicted" || rd.LastEventID != ids[2] {
			t.Fatalf("want an evicted reset echoing %s, got %+v", ids[2], reset)
		}
		for i := 7; i < 10; i++ { // what the ring retains
			if ev := s.next(); ev.Data != seqData(i) {
				t.Fatalf("after reset: got %q, want %q", ev.Data, seqData(i))
			}
		}
		// Resuming from the reset's id does not reset again.
		again := subscribe(t, client, c.base+"/events?topic=small", "Last-Event-ID: "+reset.LastEventID).ready()
		publishData(t, pub, "small", "fresh")
		for ev := again.next(); ev.Data != "fresh"; ev = again.next() {
			if ev.Type == "reset" {
				t.Fatalf("resuming from the reset id reset again: %+v", ev)
			}
		}
	})

	t.Run("not evicted from a subscribed topic", func(t *testing.T) {
		// Events of "small" were evicted, but this subscriber only has "big".
		s := subscribe(t, client, c.base+"/events?topic=big", "Last-Event-ID: "+ids[0]).ready()
		if ev := s.next(); ev.Type == "reset" || ev.Data != "b0" || ev.LastEventID != bigID {
			t.Fatalf("want b0 replayed without reset, got %+v", ev)
		}
	})

	for name, id := range map[string]string{
		"malformed":   "not an id at all",
		"other epoch": "aaaaaaaaaa-3",
		"future":      strings.Split(ids[0], "-")[0] + "-999999",
		"huge":        strings.Repeat("z", 5000),
	} {
		t.Run("unknown "+name, func(t *testing.T) {
			s := subscribe(t, client, c.base+"/events?topic=small", "Last-Event-ID: "+id).ready()
			ev := s.next()
			var rd resetData
			if ev.Type != "reset" || json.Unmarshal([]byte(ev.Data), &rd) != nil || rd.Reason != "unknown" {
				t.Fatalf("want an unknown reset, got %+v", ev)
			}
			if want := id[:min(len(id), 128)]; rd.LastEventID != want {
				t.Errorf("echoed %q, want %q", rd.LastEventID, want)
			}
			// Nothing is replayed after an unknown reset; live follows.
			publishData(t, pub, "small", "live-"+name)
			if ev := s.next(); ev.Data != "live-"+name {
				t.Fatalf("after unknown reset got %+v, want the live event", ev)
			}
		})
	}

	t.Run("query parameter", func(t *testing.T) {
		s := subscribe(t, client, c.base+"/events?topic=big&last_event_id="+url.QueryEscape(ids[9])).ready()
		if ev := s.next(); ev.Data != "b0" {
			t.Fatalf("resume by last_event_id: got %+v, want b0", ev)
		}
	})
}

// The replay/live seam: subscribers resume while publishing goes on; each
// must see the events after its resume point exactly once, in order.
func TestResumeRacingPublishHasNoSeam(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, basicSite)
	pub := c.base + "/publish"
	const total = 300
	start := publishData(t, pub, "chat", seqData(-1)).ID
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			publishData(t, pub, "chat", seqData(i))
		}
	}()
	for k := 0; k < 8; k++ {
		s := subscribe(t, client, c.base+"/events?topic=chat", "Last-Event-ID: "+start).ready()
		for i := 0; i < total; i++ {
			if ev := s.next(); ev.Data != seqData(i) {
				t.Fatalf("subscriber %d: event %d is %q, want %q", k, i, ev.Data, seqData(i))
			}
		}
		s.close()
	}
	wg.Wait()
}
