import { test, expect, hydrated, ADMIN_PASSWORD } from "./fixtures";
import type { Page } from "@playwright/test";

// Issue 26, point 7: a light first load. Bytes are counted as Chromium received them
// (headers included, 0 for what its cache served); the time to hydration on a throttled
// link is the benchmark's (scripts/bench-weight.sh), not a test's. Needs a release build.

type Transfer = { url: string; type: string; status: number; bytes: number; loader: string; finished?: boolean };

async function meter(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const requests = new Map<string, Transfer>();
  cdp.on("Network.requestWillBeSent", (e) =>
    requests.set(e.requestId, { url: e.request.url, type: e.type ?? "", status: 0, bytes: 0, loader: e.loaderId }),
  );
  cdp.on("Network.responseReceived", (e) => {
    const r = requests.get(e.requestId);
    if (r) r.status = e.response.status;
  });
  cdp.on("Network.dataReceived", (e) => {
    const r = requests.get(e.requestId);
    if (r && !r.finished) r.bytes += e.encodedDataLength;
  });
  cdp.on("Network.loadingFinished", (e) => {
    const r = requests.get(e.requestId);
    if (r) Object.assign(r, { bytes: e.encodedDataLength, finished: true });
  });
  // A request that failed (or was cancelled) is no longer loading.
  cdp.on("Network.loadingFailed", (e) => {
    const r = requests.get(e.requestId);
    if (r) r.finished = true;
  });
  return {
    /** Requests of the newest page still loading (live feeds stay open and do not count). A
     *  fetch the previous page sent as the next one was requested belongs to the old document
     *  (its loader): the navigation cancels it, and it is not the new page's. */
    pending: () => {
      const all = [...requests.values()];
      const page = all.filter((r) => r.type === "Document").pop();
      return all.filter((r) => !r.finished && r.type !== "EventSource" && (!page || r.loader === page.loader)).length;
    },
    seen: (path: string) => [...requests.values()].some((r) => r.finished && new URL(r.url).pathname === path),
    take: () => {
      const taken = [...requests.values()];
      requests.clear();
      return taken;
    },
  };
}

const describe = (rs: Transfer[]) => rs.map((r) => `${new URL(r.url).pathname} ${r.type} ${r.status} ${r.bytes} B`).join("\n");
const isAsset = (r: Transfer) => r.type !== "Document" && !new URL(r.url).pathname.startsWith("/api/") && r.type !== "EventSource";

test("the config page loads cold in at most 1 MB, and warm with nothing but the page", async ({ page }) => {
  const ns = `weight-${Date.now() % 1000000}`;
  // Signed in and set up through the API: the browser's cache stays empty for the cold load.
  expect((await page.request.post("/api/v1/auth/login", { data: { username: "admin", password: ADMIN_PASSWORD } })).ok()).toBe(true);
  expect((await page.request.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const created = await page.request.post(`/api/v1/namespaces/${ns}/envs/prod/configs`, {
    data: { key: "app.json", format: "json", content: '{\n  "pool": 10\n}\n' },
  });
  expect(created.status()).toBe(201);
  const transfers = await meter(page);

  await page.goto(`/ns/${ns}/prod/app.json`);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: /app\.json/ })).toBeVisible();
  // Requests the page makes once shown (the favicon, live feeds) count too.
  await expect.poll(() => transfers.seen("/favicon.svg")).toBe(true);
  await expect.poll(() => transfers.pending()).toBe(0);
  const cold = transfers.take();
  const coldBytes = cold.reduce((n, r) => n + r.bytes, 0);
  expect(coldBytes, describe(cold)).toBeLessThanOrEqual(1_000_000);
  const wasm = cold.find((r) => new URL(r.url).pathname.endsWith(".wasm"));
  expect(wasm, describe(cold)).toBeDefined();

  // A second visit: the page again, every file it names from the cache.
  await page.goto(`/ns/${ns}/prod/app.json`);
  await hydrated(page);
  await expect.poll(() => transfers.pending()).toBe(0);
  const warm = transfers.take();
  const document = warm.filter((r) => r.type === "Document");
  expect(document.length, describe(warm)).toBe(1);
  expect(document[0].bytes, describe(warm)).toBeGreaterThan(0);
  const assets = warm.filter(isAsset);
  expect(assets.map((r) => new URL(r.url).pathname), describe(warm)).toContain(new URL(wasm!.url).pathname);
  expect(assets.filter((r) => r.bytes > 0), describe(warm)).toEqual([]);
});
