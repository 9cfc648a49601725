package integration

import "strings"

// The rows of the differential test where sse_mercure answers otherwise
// than Mercure today. Two lists per mode:
//
//   - deliberate: a difference this project keeps, with its reason (the
//     README's compatibility table says the same);
//   - known, to fix: a difference the issue 16 work removes. Each entry
//     goes once its fix lands (the test fails when a listed row starts to
//     match, so the list cannot go stale). notes/oracle.md has every
//     mismatch, ours against theirs.

// oracleDeliberateModern: differences from Mercure 1.0 kept on purpose.
var oracleDeliberateModern = map[string]string{}

// oracleToFixModern: differences from Mercure 1.0 still to remove.
var oracleToFixModern = map[string]string{}

// oracleDeliberateCompat: differences from Mercure 0.24.2 kept on purpose.
var oracleDeliberateCompat = map[string]string{}

// oracleToFixCompat: differences from Mercure 0.24.2 still to remove.
var oracleToFixCompat = map[string]string{}

var (
	oracleKnownModern = mergeKnown(oracleDeliberateModern, oracleToFixModern)
	oracleKnownCompat = mergeKnown(oracleDeliberateCompat, oracleToFixCompat)
)

func mergeKnown(deliberate, toFix map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range deliberate {
		m[k] = "deliberate: " + v
	}
	for k, v := range toFix {
		m[k] = "to fix: " + v
	}
	return m
}

// equivalentHeader says whether two values of a compared header mean the
// same to a client although they are spelled otherwise. Each rule is a
// deliberate difference, with its reason.
func equivalentHeader(name, ours, theirs string) bool {
	switch name {
	case "Cache-Control":
		// Ours says no-store on answers that Mercure leaves without
		// Cache-Control (publish answers, errors): stricter, and what RFC
		// 6750 §5.1 asks of answers about tokens; a client sees no change.
		if theirs == "" && ours == "no-store" {
			return true
		}
		// On a stream both forbid caching; Mercure spells out the HTTP/1.0
		// forms too. no-transform (ours) keeps proxies from compressing or
		// buffering the stream.
		if strings.Contains(ours, "no-cache") && strings.Contains(theirs, "no-cache") {
			return true
		}
	}
	return false
}
