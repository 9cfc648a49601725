package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressFrom is the shortest run that gets progress lines: a shorter one
// is over before a line would say anything.
const progressFrom = 3 * time.Second

// startProgress writes a line to w every interval while the run goes on, so
// that a long run shows it is alive and a stall shows when it began:
//
//	t=3s subscribers=100 delivered=29700 rate=10000/s dropped=0
//
// t counts from start (publishing began), rate is the deliveries of the last
// interval. subscribers is the number connected, dropped ones included.
// The returned stop ends the lines and returns once none will follow.
func startProgress(w io.Writer, interval time.Duration, start time.Time, subscribers int, counts *tally) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var prev int64
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				delivered := counts.delivered.Load()
				rate := float64(delivered-prev) / now.Sub(last).Seconds()
				prev, last = delivered, now
				fmt.Fprintf(w, "t=%s subscribers=%d delivered=%d rate=%.0f/s dropped=%d\n",
					now.Sub(start).Round(time.Second), subscribers, delivered, rate, counts.dropped.Load())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
