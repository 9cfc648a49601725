package redishub

import (
	"fmt"
	"testing"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"
	"github.com/ssehub/caddy-sse/internal/redistest"
)

// With Redis, history lives in Redis and an instance's topics hold none:
// churn recycles them all, and a resume on a room afterwards is served
// whole from Redis.
func TestRedisPatternChurnKeepsHistory(t *testing.T) {
	srv := redistest.Start(t, false)
	a := newRedisHub(t, srv, "pt:")
	ref := func(n string) hub.TopicRef {
		return hub.TopicRef{Name: "room/" + n, Ring: hub.DefaultRingConfig(), Group: "room/*", GroupMax: 4}
	}
	first := publishData(t, a, "important-1", ref("important"))
	publishData(t, a, "important-2", ref("important"))
	// Events this instance has not yet read from the bus would reach the
	// resumer live, not in its replay: wait for them, to look at the replay.
	awaitCond(t, "the bus reader to deliver 2", func() bool { return a.local.Position().Seq == 2 })
	for i := 0; i < 100; i++ {
		s, _, err := a.Subscribe([]hub.TopicRef{ref(fmt.Sprintf("churn-%d", i))}, "", 4)
		if err != nil {
			t.Fatalf("churn subscribe %d: %v", i, err)
		}
		s.Close()
	}
	if n := a.local.Stats().Topics; n > 4 {
		t.Fatalf("the instance holds %d topics, over the cap of 4", n)
	}
	if err := a.local.CheckTopics(); err != nil {
		t.Fatal(err)
	}
	s, rp, err := a.Subscribe([]hub.TopicRef{ref("important")}, first.ID, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rp.Later != nil {
		rp = <-rp.Later
	}
	if rp.Reset != nil || len(rp.Events) != 1 || hubtest.DataOf(rp.Events[0]) != "important-2" {
		t.Fatalf("resume on room/important after churn: reset %+v, %d events; want important-2 and no reset", rp.Reset, len(rp.Events))
	}
}
