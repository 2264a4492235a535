// The dashboard's first-load weight (issue 26, point 7): Chromium loads the config page of a
// running server through a throttled link (20 Mbit/s, 40 ms latency, Chrome's own network
// emulation over CDP) and reports the bytes it transferred and the time from navigation to
// hydration, cold (empty cache) and warm (the same browser again). Run by scripts/bench-weight.sh.
//
// usage: node bench-weight.cjs BASE_URL ADMIN_PASSWORD RUNS
const { chromium } = require("@playwright/test");

const [base, password, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);
const LINK = { offline: false, latency: 40, downloadThroughput: 20e6 / 8, uploadThroughput: 20e6 / 8 };

/** Bytes on the wire per request (headers included; 0 when served from the browser's cache). */
async function meter(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", LINK);
  const requests = new Map();
  cdp.on("Network.requestWillBeSent", (e) => {
    requests.set(e.requestId, { url: e.request.url, type: e.type, bytes: 0, cached: false, status: 0 });
  });
  cdp.on("Network.responseReceived", (e) => {
    const r = requests.get(e.requestId);
    if (r) Object.assign(r, { status: e.response.status, cached: e.response.fromDiskCache || e.response.fromMemoryCache, encoding: e.response.headers["content-encoding"] });
  });
  cdp.on("Network.requestServedFromCache", (e) => {
    const r = requests.get(e.requestId);
    if (r) r.cached = true;
  });
  cdp.on("Network.dataReceived", (e) => {
    const r = requests.get(e.requestId);
    if (r && !r.finished) r.bytes += e.encodedDataLength;
  });
  cdp.on("Network.loadingFinished", (e) => {
    const r = requests.get(e.requestId);
    if (r) Object.assign(r, { bytes: e.encodedDataLength, finished: true });
  });
  return {
    take() {
      const taken = [...requests.values()];
      requests.clear();
      return taken;
    },
  };
}

/** The page records when the front end says it has hydrated (`window.__graycast_hydrated`). */
const HYDRATION_CLOCK = () => {
  let value;
  Object.defineProperty(window, "__graycast_hydrated", {
    configurable: true,
    get: () => value,
    set: (v) => {
      value = v;
      if (v === true && window.__graycast_hydrated_at === undefined) window.__graycast_hydrated_at = performance.now();
    },
  });
};

function kind(r) {
  const path = new URL(r.url).pathname;
  if (r.type === "Document") return "page";
  if (path.startsWith("/api/") || r.type === "EventSource" || r.type === "XHR") return "data";
  return "asset";
}

function summary(requests) {
  const sum = (k) => requests.filter((r) => kind(r) === k).reduce((n, r) => n + r.bytes, 0);
  return {
    total: requests.reduce((n, r) => n + r.bytes, 0),
    page: sum("page"),
    assets: sum("asset"),
    data: sum("data"),
    fromNetwork: requests.filter((r) => kind(r) === "asset" && r.bytes > 0).map((r) => `${new URL(r.url).pathname} ${r.status} ${r.bytes} B${r.encoding ? ` ${r.encoding}` : ""}`),
  };
}

async function load(page, url, m) {
  await page.goto(url);
  await page.waitForFunction(() => window.__graycast_hydrated === true, null, { timeout: 60_000 });
  const ms = await page.evaluate(() => window.__graycast_hydrated_at);
  // Let late requests (favicon, live feed) show up before counting.
  await page.waitForTimeout(500);
  return { ms, ...summary(m.take()) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const ns = `bench${Date.now() % 1000000}`;
  const setup = await browser.newContext({ baseURL: base });
  const signIn = (ctx) => ctx.request.post("/api/v1/auth/login", { data: { username: "admin", password } });
  if (!(await signIn(setup)).ok()) throw new Error("sign-in failed");
  const created = [
    await setup.request.post("/api/v1/namespaces", { data: { name: ns } }),
    await setup.request.post(`/api/v1/namespaces/${ns}/envs/prod/configs`, {
      data: { key: "app.json", format: "json", content: JSON.stringify({ pool: 10, timeout: 30, regions: ["beijing", "shanghai"] }, null, 2) },
    }),
  ];
  for (const r of created) if (!r.ok()) throw new Error(`setup: ${r.status()} ${await r.text()}`);
  await setup.close();
  const url = `${base}/ns/${ns}/prod/app.json`;

  const cold = [];
  const warm = [];
  for (let i = 0; i < runs; i++) {
    // A new context has an empty cache: a first visit, signed in.
    const context = await browser.newContext({ baseURL: base });
    await context.addInitScript(HYDRATION_CLOCK);
    await signIn(context);
    const page = await context.newPage();
    const m = await meter(page);
    cold.push(await load(page, url, m));
    warm.push(await load(page, url, m));
    await context.close();
  }
  await browser.close();

  const kb = (n) => `${(n / 1000).toFixed(1)} kB`;
  const report = (name, xs) => {
    console.log(`${name}: transferred ${kb(median(xs.map((x) => x.total)))} (page ${kb(median(xs.map((x) => x.page)))}, assets ${kb(median(xs.map((x) => x.assets)))}, data ${kb(median(xs.map((x) => x.data)))}); hydrated after ${Math.round(median(xs.map((x) => x.ms)))} ms (median of ${xs.length}; runs: ${xs.map((x) => Math.round(x.ms)).join(", ")} ms)`);
    console.log(`  assets from the network: ${xs[0].fromNetwork.length ? xs[0].fromNetwork.join("; ") : "none"}`);
  };
  console.log(`link: 20 Mbit/s down and up, 40 ms latency (CDP Network.emulateNetworkConditions); page ${url.replace(base, "")}`);
  report("cold", cold);
  report("warm", warm);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
