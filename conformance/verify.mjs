// After the suite has run: lists each case with its result and fails unless
// every case ran and passed for a reason.
//
//   node verify.mjs <Playwright JSON report> [<Caddy access log>]
//
// Playwright's verdict is the judge, with two additions that keep a case
// from passing vacuously:
//   - every case ran: none skipped, none flaky (retries are off anyway),
//     at least one case;
//   - every publish the browser sent (one per case) was answered 200, read
//     from the hub's access log: a case whose update "must not be
//     received" proves nothing if its publish was refused.
import { readFileSync } from "node:fs";

const [reportPath, accessLog] = process.argv.slice(2);
if (!reportPath) {
  console.error("usage: node verify.mjs <report.json> [<access.log>]");
  process.exit(2);
}

let report;
try {
  report = JSON.parse(readFileSync(reportPath, "utf8"));
} catch (e) {
  console.error(`verify: FAIL: no Playwright report at ${reportPath}: ${e.message}`);
  process.exit(1);
}

const problems = [];
const cases = [];
(function walk(suites, path) {
  for (const s of suites ?? []) {
    const p = s.title && !s.title.endsWith(".ts") ? [...path, s.title] : path;
    for (const spec of s.specs ?? []) {
      for (const t of spec.tests ?? []) {
        const last = t.results?.[t.results.length - 1];
        const err = last?.error?.message?.split("\n").find((l) => l.trim()) ?? "";
        cases.push({ title: [...p, spec.title].join(" › "), status: t.status, err, start: last ? Date.parse(last.startTime) : 0 });
      }
    }
    walk(s.suites, p);
  }
})(report.suites, []);

const st = report.stats ?? {};
if (cases.length === 0) problems.push("the suite ran no case");
if (st.unexpected) problems.push(`${st.unexpected} case(s) failed`);
if (st.skipped) problems.push(`${st.skipped} case(s) skipped: every case must run`);
if (st.flaky) problems.push(`${st.flaky} case(s) flaky`);
for (const e of report.errors ?? []) problems.push(`Playwright: ${e.message?.split("\n")[0]}`);

if (accessLog) {
  // Caddy's JSON access log: the browser's POSTs to the hub (the sanity
  // checks use Node, whose User-Agent is not Chrome's).
  const posts = readFileSync(accessLog, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .filter((e) => e.request?.method === "POST" &&
      new URL(e.request.uri, "http://x").pathname === "/.well-known/mercure" &&
      (e.request.headers?.["User-Agent"] ?? []).some((ua) => ua.includes("Chrome")));
  // One worker, one case at a time, one publish per case: the n-th
  // publish is the n-th case's. (The report's start times and durations
  // do not reliably bracket the page's requests, seen on a busy machine.)
  const ran = cases.filter((c) => c.status !== "skipped").sort((a, b) => a.start - b.start);
  if (posts.length === ran.length) ran.forEach((c, i) => (c.publishes = [posts[i].status]));
  else {
    problems.push(`the hub's log has ${posts.length} publish(es) from the browser for ${ran.length} case(s) run, ` +
      `answered ${posts.map((e) => e.status).join(", ")}: each case publishes once`);
  }
  for (const c of cases) {
    const got = c.publishes ?? [];
    if (posts.length === ran.length && got[0] !== 200) {
      c.vacuous = true;
      problems.push(`"${c.title}": its publish was answered ${got[0]}, want 200: ` +
        `the case tested nothing` + (c.status === "expected" ? ", yet Playwright counts it as passed" : ""));
    }
  }
  console.log(`verify: the browser published ${posts.length} update(s), ` +
    `${posts.filter((e) => e.status === 200).length} accepted (200), for ${cases.length} case(s)`);
}

for (const c of cases) {
  const mark = c.status !== "expected" ? (c.status === "skipped" ? "SKIP" : "FAIL") : c.vacuous ? "VOID" : "pass";
  const why = c.err ? `  (${c.err.replace(/\u001b\[[0-9;]*m/g, "").trim()})` : "";
  const pub = c.publishes ? `  [publish: ${c.publishes.join(", ")}]` : "";
  console.log(`  ${mark}  ${c.title}${pub}${why}`);
}
console.log(`verify: Playwright alone: ${st.expected ?? 0} passed, ${st.unexpected ?? 0} failed, ${st.skipped ?? 0} skipped, ${st.flaky ?? 0} flaky`);
// The closing line: a case passes when Playwright passed it and its publish
// was accepted; a vacuous pass counts as failed.
const passed = cases.filter((c) => c.status === "expected" && !c.vacuous).length;
const skipped = cases.filter((c) => c.status === "skipped").length;
console.log(`conformance: ${passed} passed, ${cases.length - passed - skipped} failed, ${skipped} skipped`);

if (problems.length) {
  for (const p of problems) console.error(`verify: FAIL: ${p}`);
  process.exit(1);
}
console.log("verify: ok: every case ran, passed, and had its update accepted");
