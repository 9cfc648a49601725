//go:build ssetesthooks

package hub

import (
	"bytes"
	"fmt"
	"os"
	"sync"
)

// filterHook, in the build of the integration tests only (-tags
// ssetesthooks), holds the filter pass of the first live event whose wire
// holds "filter-gate" until the FIFO named by SSE_TEST_FILTER_GATE is
// written to and closed, after logging "sse test hook: filter blocked" on
// stderr. It lets a test prove that nothing else waits for a filter
// without timing anything.
func filterHook(ev *Event) *Event {
	if filterGate != "" && bytes.Contains(ev.Wire, []byte("filter-gate")) {
		filterGateOnce.Do(func() {
			fmt.Fprintln(os.Stderr, "sse test hook: filter blocked")
			_, _ = os.ReadFile(filterGate)
		})
	}
	return ev
}

var (
	filterGate     = os.Getenv("SSE_TEST_FILTER_GATE")
	filterGateOnce sync.Once
)
