package main

import (
	"math/bits"
	"time"
)

// histogram records latencies in microseconds in log-linear buckets: 16
// per power of two, so percentiles are within about 6% and merging
// thousands of subscribers' histograms is cheap.
type histogram struct {
	counts [64 * 16]uint64
	n      uint64
	max    time.Duration
}

func bucketOf(us uint64) int {
	if us < 16 {
		return int(us)
	}
	exp := bits.Len64(us) - 5 // us >> exp is in [16, 32)
	return exp*16 + int(us>>uint(exp))
}

func bucketValue(b int) uint64 {
	if b < 32 {
		return uint64(b)
	}
	exp := b/16 - 1
	return uint64(b%16+16) << uint(exp)
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	us := uint64(d / time.Microsecond)
	b := bucketOf(us)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the latency below which a fraction q of samples fall.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	target := uint64(q * float64(h.n))
	if target >= h.n {
		target = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > target {
			return time.Duration(bucketValue(i)) * time.Microsecond
		}
	}
	return h.max
}
