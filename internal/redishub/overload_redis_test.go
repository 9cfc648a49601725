package redishub

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ssehub/caddy-sse/internal/hub"
	"github.com/ssehub/caddy-sse/internal/hubtest"
	"github.com/ssehub/caddy-sse/internal/redistest"
)

// With Redis, the instance's bus reader waits for a full subscriber whose
// socket still takes bytes, as a publisher does: the reader is not
// dropped, and gets every event in order once it reads (real redis-server).
func TestOverloadRedisDeliveryWaitsForAReader(t *testing.T) {
	srv := redistest.Start(t, false)
	rh := newRedisHub(t, srv, "overload:")
	news := redisTopic("news", 100)
	sub, _, err := rh.Subscribe([]hub.TopicRef{news}, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 10
	for i := 0; i < n; i++ {
		publishData(t, rh, fmt.Sprint(i), news) // Redis accepts: publishers do not wait here
	}
	// The bus reader delivered 2 and waits for room for the rest.
	awaitCond(t, "the bus reader to wait for room", func() bool {
		return sub.Full() && rh.local.PublishersWaiting() == 1
	})
	got := hubtest.TakeN(t, sub, n)
	for i, ev := range got {
		if !strings.Contains(string(ev.Wire), "data: "+fmt.Sprint(i)+"\n") {
			t.Fatalf("event %d is %q", i, ev.Wire)
		}
	}
	if hubtest.IsClosed(sub.Done()) || rh.Stats().DroppedSlow != 0 {
		t.Fatal("a reading subscriber was dropped by the bus reader")
	}
}
