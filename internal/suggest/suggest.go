// Package suggest turns an unknown name (a misspelt Caddyfile option) into
// a hint: the valid name it most likely meant, and the list of valid names.
// It is plain Go with no dependency, so that any parser can use it.
package suggest

import (
	"fmt"
	"strings"
)

// Hint returns the text that follows an "unrecognized option" error:
//
//	(did you mean "heartbeat"? options: topic, hub, heartbeat)
//	(options: window, max_users)
//
// the second when no valid name is close to got. It starts with a space,
// so it goes right after the quoted name; with no valid names it is empty.
func Hint(got string, valid []string) string {
	if len(valid) == 0 {
		return ""
	}
	list := strings.Join(valid, ", ")
	if near, ok := Closest(got, valid); ok {
		return fmt.Sprintf(" (did you mean %q? options: %s)", near, list)
	}
	return fmt.Sprintf(" (options: %s)", list)
}

// Closest returns the valid name nearest to got and whether it is near
// enough to be what got misspells: at most one edit (a letter added,
// dropped, changed, or two letters swapped) per three letters of the
// shorter name, and at least one allowed. Case and the choice of - or _
// do not count. Of names equally near, the first in valid wins.
func Closest(got string, valid []string) (string, bool) {
	g := fold(got)
	best, bestDist := "", -1
	for _, v := range valid {
		d := distance(g, fold(v))
		if bestDist < 0 || d < bestDist {
			best, bestDist = v, d
		}
	}
	if bestDist < 0 {
		return "", false
	}
	limit := max(1, min(len(g), len(best))/3)
	if bestDist > limit {
		return "", false
	}
	return best, true
}

func fold(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "-", "_")
}

// distance is the optimal string alignment distance between a and b
// (Levenshtein, plus a swap of two neighbours as one edit), by bytes:
// option names are ASCII.
func distance(a, b string) int {
	// Three rows of the table: the one two back is needed for swaps.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
