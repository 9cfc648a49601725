// Before the suite runs: proves, with the suite's own token, that the hub
// accepts its publishes, so that the suite's "must not be received" cases
// cannot pass merely because every publish was refused.
//
//   node sanity.mjs <hub URL> <mode: modern|compat> <token>
//
// Checked, in order, on one anonymous stream (the suite subscribes
// anonymously):
//   1. the stream opens: 200, text/event-stream;
//   2. a public update published with the token and a custom id is answered
//      200, text/plain, with that id, and reaches the stream;
//   3. a private update reusing that id (the suite reuses ids: its private
//      cases publish to the same topics with the same ids as its public
//      ones) is accepted too: 200 and the id;
//   4. a public marker published after it reaches the stream next: the
//      private update did not reach the anonymous subscriber.
import { randomBytes } from "node:crypto";
import dns from "node:dns";
import { readFileSync } from "node:fs";

// Caddy listens on 127.0.0.1; "localhost" may resolve to ::1 first.
dns.setDefaultResultOrder("ipv4first");

const [hub, mode, token] = process.argv.slice(2);
if (!hub || !["modern", "compat"].includes(mode) || !token) {
  console.error("usage: node sanity.mjs <hub URL> <modern|compat> <token>");
  process.exit(2);
}

// Safety nets only: each wait ends as soon as its condition holds.
const READY_WITHIN_MS = 60_000;
const EVENT_WITHIN_MS = 10_000;

function fail(msg) {
  console.error(`sanity: FAIL: ${msg}`);
  process.exit(1);
}

const rand = () => randomBytes(8).toString("hex");

// alive tells whether Caddy still runs. An exited Caddy stays a zombie
// until run.sh reaps it, and a zombie still takes signals: read its state.
function alive(pid) {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

// waitReady polls the hub's origin until Caddy answers: it is starting in
// the background and says nothing when it is ready but its log.
async function waitReady() {
  const origin = new URL(hub).origin;
  const deadline = Date.now() + READY_WITHIN_MS;
  let last;
  const pid = Number(process.env.CADDY_PID);
  while (Date.now() < deadline) {
    if (pid && !alive(pid)) fail("Caddy exited (its log says why)");
    try {
      const r = await fetch(origin + "/", { signal: AbortSignal.timeout(5_000) });
      await r.arrayBuffer();
      return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`the hub at ${origin} did not answer within ${READY_WITHIN_MS / 1000}s: ${last?.cause ?? last}`);
}

// stream is an anonymous subscription whose events are read one by one.
async function openStream(topic) {
  const u = new URL(hub);
  u.searchParams.append(mode === "modern" ? "match" : "topic", topic);
  const ctl = new AbortController();
  const r = await fetch(u, { headers: { Accept: "text/event-stream" }, signal: ctl.signal });
  const ct = r.headers.get("content-type") ?? "";
  if (r.status !== 200 || !ct.startsWith("text/event-stream")) {
    fail(`anonymous subscription ${u}: ${r.status} ${ct}: ${(await r.text()).slice(0, 300)} ` +
      `(the suite subscribes anonymously: the hub needs "anonymous")`);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    close: () => ctl.abort(),
    // next returns the next event that carries data (comments and
    // heartbeats are skipped), as {id, data}.
    async next(what) {
      const timer = setTimeout(() => ctl.abort(), EVENT_WITHIN_MS);
      try {
        for (;;) {
          const end = buf.search(/\r?\n\r?\n/);
          if (end >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end).replace(/^\r?\n\r?\n/, "");
            const ev = { id: undefined, data: [] };
            for (const line of block.split(/\r?\n/)) {
              const m = /^([^:]+): ?(.*)$/.exec(line);
              if (!m) continue;
              if (m[1] === "id") ev.id = m[2];
              if (m[1] === "data") ev.data.push(m[2]);
            }
            if (ev.data.length) return { id: ev.id, data: ev.data.join("\n") };
            continue;
          }
          const { value, done } = await reader.read();
          if (done) fail(`${what}: the stream ended`);
          buf += value;
        }
      } catch (e) {
        fail(`${what}: nothing within ${EVENT_WITHIN_MS / 1000}s (${e.name})`);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

async function publish(what, fields) {
  const body = new URLSearchParams(fields);
  const r = await fetch(hub, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
    body,
  });
  const text = await r.text();
  const ct = r.headers.get("content-type") ?? "";
  if (r.status !== 200) {
    fail(`${what}: the hub answered ${r.status} ${text.trim().slice(0, 300)}; ` +
      `with this refused, the suite's "not received" cases would pass without testing anything`);
  }
  if (!/^text\/plain(?:$|;)/.test(ct)) fail(`${what}: Content-Type ${ct}, want text/plain`);
  if (fields.id !== undefined && text !== fields.id) fail(`${what}: the hub answered the id ${JSON.stringify(text)}, want ${JSON.stringify(fields.id)}`);
  return text;
}

await waitReady();
const topic = `https://example.net/caddy-sse-conformance/${rand()}`;
const id = `sanity-${rand()}`;
const marker = `sanity-marker-${rand()}`;
const s = await openStream(topic);

await publish("publishing with the suite's token", { topic, id, data: "sanity public" });
let ev = await s.next("the public update reaching the anonymous stream");
if (ev.id !== id || ev.data !== "sanity public") fail(`the anonymous stream got ${JSON.stringify(ev)}, want id ${id}`);

await publish("publishing a private update that reuses an id (as the suite's private cases do)",
  { topic, id, data: "sanity private", private: "on" });
await publish("publishing a public marker", { topic, id: marker, data: "sanity marker" });
ev = await s.next("the marker reaching the anonymous stream");
if (ev.id !== marker || ev.data !== "sanity marker") {
  fail(`the anonymous stream got ${JSON.stringify(ev)} before the marker: a private update reached it`);
}
s.close();
console.log(`sanity: ok (${mode} mode): the suite's token publishes (custom id echoed, a reused id accepted), ` +
  `an anonymous stream gets public updates and not private ones`);
