// Playwright configuration for running Mercure's conformance suite against
// sse_mercure. The suite itself is not part of this repository (it is AGPL):
// run.sh points MERCURE_CONFORMANCE_DIR at a copy outside it (the Go module
// cache for 0.24.2, a snapshot of dunglas/mercure for 1.0) and NODE_PATH at
// our node_modules, so its `import "@playwright/test"` resolves to ours.
//
// Only what must differ from the suite's own configuration is here:
// Debian's Chromium instead of a downloaded browser (CI has no network for
// Playwright's downloads), one browser, no retries (a retry would turn a
// flaky failure into a pass), and a JSON report that run.sh checks.
import { defineConfig, devices } from "@playwright/test";

const suite = process.env.MERCURE_CONFORMANCE_DIR;
if (!suite) {
  throw new Error(
    "MERCURE_CONFORMANCE_DIR is not set: use conformance/run.sh, or set it to a conformance-tests/ folder of dunglas/mercure",
  );
}

// The suite asserts that the hub answers a publish with the update's own id
// only when CUSTOM_ID is set (its .env sets it; we do not read that file).
process.env.CUSTOM_ID ??= "1";

const out = process.env.CONFORMANCE_OUT ?? "test-results";

export default defineConfig({
  testDir: suite,
  testMatch: "mercure.spec.ts",
  outputDir: `${out}/artifacts`,
  // A bound on a whole case, not a wait: 30 s where the suite's own
  // configuration says 10, which a busy machine (CI, or several sessions on
  // two cores) can exceed while starting a page. What a case waits for is
  // the suite's (2 s for an update that must not arrive).
  timeout: 30_000,
  expect: { timeout: 5_000 },
  forbidOnly: true,
  retries: 0,
  // One hub, one browser: the cases run one after the other, as the suite
  // (one file, not fully parallel) does anyway.
  workers: 1,
  reporter: [["line"], ["json", { outputFile: `${out}/report.json` }]],
  // The suite logs every step of its page; the JSON report keeps that, the
  // terminal shows progress and failures (verify.mjs lists every case).
  quiet: true,
  use: {
    baseURL: process.env.BASE_URL ?? "https://localhost/.well-known/mercure",
    // The hub's certificate comes from Caddy's internal CA (tls internal).
    ignoreHTTPSErrors: true,
    trace: "off",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
          args: [
            // localhost is the hub, on loopback: never ask a resolver.
            "--host-resolver-rules=MAP localhost 127.0.0.1",
            // Caddy offers HTTP/3; the test is about Mercure, over TCP.
            "--disable-quic",
            // Nothing but the hub: CI's network is closed.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
          ],
        },
      },
    },
  ],
});
