package hub

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fuzzIDPattern is what ParseID must accept, written independently: an
// epoch of id characters, a dash, and a decimal sequence without leading
// zeros; the whole at most 64 bytes.
var fuzzIDPattern = regexp.MustCompile(`^[0-9A-Za-z._:-]+-(0|[1-9][0-9]*)$`)

func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"k2v9x7mq3a-42", "a-0", "a-01", "-5", "a-", "a--5", "a-b-7", "a.b_c:d-18446744073709551615",
		"a-18446744073709551616", "a-+5", "a-1_0", "a b-5", "\xff-1", "",
		strings.Repeat("e", 62) + "-1", strings.Repeat("e", 63) + "-1",
	} {
		f.Add(s, "k2v9x7mq3a", uint64(42))
	}
	f.Add("", strings.Repeat("e", 44), uint64(math.MaxUint64))
	f.Add("", strings.Repeat("e", 45), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, s string, epoch string, seq uint64) {
		id, ok := ParseID(s)
		_, seqErr := strconv.ParseUint(s[strings.LastIndexByte(s, '-')+1:], 10, 64)
		want := len(s) <= maxIDLen && fuzzIDPattern.MatchString(s) && seqErr == nil
		if ok != want {
			t.Fatalf("ParseID(%q) ok = %v, want %v", s, ok, want)
		}
		if ok {
			if len(s) > 64 {
				t.Fatalf("ParseID accepted %d bytes", len(s))
			}
			if id.String() != s {
				t.Fatalf("ParseID(%q) = %+v, which prints as %q", s, id, id.String())
			}
		}
		// The other way round: every id the hub could make parses back.
		made := ID{Epoch: epoch, Seq: seq}
		back, ok := ParseID(made.String())
		wantOK := epoch != "" && strings.Trim(epoch, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._:") == "" &&
			len(made.String()) <= 64
		if ok != wantOK || ok && back != made {
			t.Fatalf("ParseID(%q) = %+v, %v; want %+v, %v", made.String(), back, ok, made, wantOK)
		}
	})
}
