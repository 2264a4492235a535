import { test, expect, signIn, hydrated, agent } from "./fixtures";
import type { Page } from "@playwright/test";

/** Every answer of 400 or more the page receives (the fixture already fails on console errors). */
function refusals(page: Page) {
  const seen: string[] = [];
  page.on("response", (r) => {
    if (r.status() >= 400) seen.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return seen;
}

test("every top-bar link lands on its page, navigated in the browser, without a refused call", async ({ page }) => {
  await signIn(page);
  const refused = refusals(page);
  const nav = page.getByRole("navigation", { name: "Main" });
  const pages: [string, RegExp, string][] = [
    ["Audit", /\/audit$/, "Audit trail"],
    ["Users", /\/admin\/users$/, "Users"],
    ["Tokens", /\/admin\/tokens$/, "API tokens"],
    ["Environments", /\/admin\/environments$/, "Environments"],
    ["Namespaces", /\/$/, "Namespaces"],
  ];
  for (const [name, url, heading] of pages) {
    await nav.getByRole("link", { name, exact: true }).click();
    await expect(page).toHaveURL(url);
    await expect(page.getByRole("heading", { name: heading, level: 1 })).toBeVisible();
    await expect(page.locator("main .error")).toHaveCount(0);
    if (name === "Audit") await expect(page.getByTestId("audit")).toBeVisible();
  }
  await page.getByRole("link", { name: "graycast" }).first().click();
  await expect(page.getByRole("heading", { name: "Namespaces", level: 1 })).toBeVisible();
  expect(refused, refused.join("\n")).toEqual([]);
});

test("an abort banner's links show the failing instance (back on stable, with its message) and the audit entry", async ({ page, baseURL }) => {
  const ns = `links-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/staging/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 10}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"pool": 20}\n', base_version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `sub-${ns}`, role: "subscriber" } })).json()).token;
  const closers = [
    await agent(baseURL!, token, ns, "staging", "pod-1"),
    await agent(baseURL!, token, ns, "staging", "pod-7", (v) => v === 2),
  ];
  try {
    const lane = await api.post(`${base}/app.json/lanes`, {
      data: {
        version: 2, targets: ["pod-1", "pod-7"],
        plan: { steps: [{ percentage: 10, hold_secs: 600 }, { percentage: 100, hold_secs: 600 }], guards: [{ kind: "reports" }] },
      },
    });
    expect(lane.status(), await lane.text()).toBe(201);
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);
    const refused = refusals(page);
    const banner = page.getByTestId("abort-banner");
    await expect(banner).toContainText("pod-7", { timeout: 20_000 });
    // The instance's own quotes, not `\"`; the time with its date.
    await expect(banner).toContainText('pod-7: "nginx: [emerg] unknown directive "gzip_vary" in v2"');
    await expect(banner).not.toContainText('\\"');
    await expect(banner.locator("time")).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);

    await banner.getByRole("link", { name: "Failing instances" }).click();
    await expect(page).toHaveURL(`/instances/${ns}/staging?tab=failed&key=app.json`);
    await expect(page.getByRole("tab", { name: "Failed" })).toHaveAttribute("aria-selected", "true");
    const row = page.locator('tr[data-client="pod-7"]');
    // Back on stable, and why it left the lane still shows.
    await expect(row).toContainText("STABLE v1");
    await expect(row.getByTestId("failure")).toContainText('failed v2 at');
    await expect(row.getByTestId("failure")).toContainText('unknown directive "gzip_vary" in v2');
    await expect(page.locator('tr[data-client="pod-1"]')).toHaveCount(0);
    await expect(page.locator("input[name=filter-key]")).toHaveValue("app.json");

    await page.goBack();
    await hydrated(page);
    await page.getByTestId("abort-banner").getByRole("link", { name: "Audit entry" }).click();
    await expect(page).toHaveURL(/\/audit\?/);
    await expect(page.getByTestId("audit").locator("[data-action='rollout.abort']")).toBeVisible();

    // Loaded when the abort is already on record: the banner shows once the page hydrated,
    // and it hydrates without a mismatch (the fixture fails on a hydration panic).
    for (let i = 0; i < 3; i++) {
      await page.goto(`/ns/${ns}/staging/app.json`);
      await hydrated(page);
      await expect(page.getByTestId("abort-banner")).toContainText("pod-7");
    }
    expect(refused, refused.join("\n")).toEqual([]);
  } finally {
    closers.forEach((close) => close());
  }
});

test("the instances page keeps its tab and filters in the URL, sorts client ids naturally and says when it updated", async ({ page, baseURL }) => {
  const ns = `inst-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"a": 1}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `inst-${ns}`, role: "subscriber" } })).json()).token;
  const closers = [];
  for (const id of ["pod-10", "pod-2", "pod-1"]) closers.push(await agent(baseURL!, token, ns, "dev", id));
  try {
    await page.goto(`/instances/${ns}/dev`);
    await hydrated(page);
    const rows = page.getByTestId("instances").locator("tr[data-client]");
    await expect(rows).toHaveCount(3);
    await expect(rows.nth(0)).toHaveAttribute("data-client", "pod-1");
    await expect(rows.nth(1)).toHaveAttribute("data-client", "pod-2");
    await expect(rows.nth(2)).toHaveAttribute("data-client", "pod-10");
    await expect(page.getByTestId("updated")).toHaveText(/updated \d+ s ago/);

    await page.getByRole("tab", { name: "Latest" }).click();
    await expect(page).toHaveURL(/tab=latest/);
    await page.locator("input[name=filter-labels]").fill("client_id in (pod-2,pod-10)");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect(page).toHaveURL(/tab=latest&labels=client_id%20in%20%28pod-2%2Cpod-10%29/);
    await expect(rows).toHaveCount(2);
    // Shared as a link: the same view.
    await page.reload();
    await hydrated(page);
    await expect(page.getByRole("tab", { name: "Latest" })).toHaveAttribute("aria-selected", "true");
    await expect(page.locator("input[name=filter-labels]")).toHaveValue("client_id in (pod-2,pod-10)");
    await expect(rows).toHaveCount(2);
    await page.goto(`/instances/${ns}/dev?version=9`);
    await hydrated(page);
    await expect(page.getByText("No instances match these filters.")).toBeVisible();
  } finally {
    closers.forEach((close) => close());
  }
});
