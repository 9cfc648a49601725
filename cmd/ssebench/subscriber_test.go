package main

import (
	"testing"
)

// Each case feeds sequence numbers from publisher 0 (acknowledged: total)
// and checks how the stream is judged.
func TestRecordCountsLossRepeatsAndReordering(t *testing.T) {
	cases := []struct {
		name                         string
		seqs                         []uint64
		total                        uint64
		lost, duplicated, outOfOrder int64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 4, 0, 0, 0},
		{"tail missing (a dropped stream)", []uint64{0, 1}, 5, 3, 0, 0},
		{"gap never filled", []uint64{0, 3, 4}, 5, 2, 0, 0},
		{"repeat", []uint64{0, 1, 1, 2}, 3, 0, 1, 0},
		{"repeat of the first", []uint64{0, 1, 2, 0}, 3, 0, 1, 0},
		{"swapped pair", []uint64{0, 2, 1, 3}, 4, 0, 0, 1},
		{"gap filled from the middle, then a repeat inside it", []uint64{0, 5, 3, 1, 2, 4, 3}, 6, 0, 1, 4},
		{"gap partly filled", []uint64{0, 4, 2}, 5, 2, 0, 1},
		{"received beyond what was acknowledged", []uint64{0, 1, 2}, 2, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &subscriber{next: make([]uint64, 1)}
			for _, q := range c.seqs {
				s.record(0, q)
			}
			if got := s.lost([]uint64{c.total}); got != c.lost {
				t.Errorf("lost %d, want %d", got, c.lost)
			}
			if s.duplicated != c.duplicated || s.outOfOrder != c.outOfOrder {
				t.Errorf("duplicated %d, out of order %d: want %d and %d", s.duplicated, s.outOfOrder, c.duplicated, c.outOfOrder)
			}
		})
	}
}

// Publishers number their events independently: a gap of one is not
// filled by the other's number.
func TestRecordKeepsPublishersApart(t *testing.T) {
	s := &subscriber{next: make([]uint64, 2)}
	for _, e := range [][2]uint64{{0, 0}, {0, 2}, {1, 0}, {1, 1}, {1, 1}, {0, 1}} {
		s.record(int(e[0]), e[1])
	}
	if lost := s.lost([]uint64{3, 2}); lost != 0 || s.duplicated != 1 || s.outOfOrder != 1 {
		t.Fatalf("lost %d, duplicated %d, out of order %d: want 0, 1, 1", lost, s.duplicated, s.outOfOrder)
	}
}

// Beyond maxGaps remembered gaps, numbers are still counted as lost, and a
// late arrival into an unremembered gap still reduces the loss.
func TestRecordBeyondMaxGaps(t *testing.T) {
	s := &subscriber{next: make([]uint64, 1)}
	var seq uint64
	for range maxGaps + 10 {
		s.record(0, seq)
		seq += 2 // skip one each time
	}
	if len(s.gaps) != maxGaps || s.untracked != 9 {
		t.Fatalf("%d gaps remembered, %d untracked: want %d and 9", len(s.gaps), s.untracked, maxGaps)
	}
	total := seq - 1
	if lost := s.lost([]uint64{total}); lost != maxGaps+9 {
		t.Fatalf("lost %d, want %d", lost, maxGaps+9)
	}
	s.record(0, total-2) // in an unremembered gap
	if lost := s.lost([]uint64{total}); lost != maxGaps+8 || s.outOfOrder != 1 || s.duplicated != 0 {
		t.Fatalf("after a late arrival: lost %d, out of order %d, duplicated %d", lost, s.outOfOrder, s.duplicated)
	}
}

// A stream's end is recorded once, with its first reason.
func TestEndedCountsOnce(t *testing.T) {
	var tl tally
	s := &subscriber{}
	s.ended(endEnded, &tl)
	s.ended(endReset, &tl)
	if tl.dropped.Load() != 1 || s.end != endEnded || s.endedAt == 0 {
		t.Fatalf("dropped %d, reason %v", tl.dropped.Load(), s.end)
	}
}

func TestExitStatus(t *testing.T) {
	cases := []struct {
		r    report
		want int
	}{
		{report{Delivered: 10, Expected: 10}, exitOK},
		{report{Delivered: 10, RejectedByStatus: map[string]int64{"503": 4}}, exitOK}, // backing off is not a failure
		{report{Delivered: 10, Dropped: 1}, exitBroken},
		{report{Delivered: 10, FailedSubs: 1}, exitBroken},
		{report{Delivered: 10, Lost: 1}, exitBroken},
		{report{Delivered: 10, Duplicated: 1}, exitBroken},
		{report{Delivered: 10, OutOfOrder: 1}, exitBroken},
		{report{Delivered: 0}, exitNothing},
		{report{Delivered: 0, Dropped: 3, Lost: 30}, exitNothing},
	}
	for _, c := range cases {
		if got := c.r.exitStatus(); got != c.want {
			t.Errorf("%+v: exit %d, want %d", c.r, got, c.want)
		}
	}
}
