import { test, expect, signIn, hydrated, expectAccessible } from "./fixtures";

// Issue 29, points 4 and 5: a releaser makes a trigger URL in the browser, copies it, an
// alerting system (here: the test's own request) calls it, and the trigger is disabled,
// rotated and deleted.
test("a trigger made in the browser rolls back when its URL is called, then is disabled, rotated and deleted", async ({ page }) => {
  const ns = `trg-${Date.now() % 1000000}-${Math.floor(Math.random() * 1000)}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/staging/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 10}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"pool": 20}\n', base_version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 2 } })).status()).toBe(201);

  await page.getByRole("link", { name: "Triggers" }).first().click();
  await expect(page.getByRole("heading", { name: "Triggers" })).toBeVisible();
  await hydrated(page);
  await page.locator("input[name=trigger-ns]").fill(ns);
  await page.locator("input[name=trigger-env]").fill("staging");
  await page.getByRole("button", { name: "Show triggers" }).click();
  await expect(page.getByText("No triggers here yet.")).toBeVisible();

  // A rollback needs a key: the refusal says so.
  await page.locator("select[name=trigger-action]").selectOption("rollback");
  await page.getByRole("button", { name: "Add trigger" }).click();
  await expect(page.getByRole("alert")).toContainText("key");

  await page.locator("input[name=trigger-key]").fill("app.json");
  await page.locator("input[name=trigger-description]").fill("error rate alert");
  await page.getByRole("button", { name: "Add trigger" }).click();
  const url = page.getByTestId("trigger-url");
  await expect(url).toHaveText(/\/hooks\/gct_[0-9a-f]{64}$/);
  await expect(page.getByText("webhook_configs:")).toBeVisible();
  await expectAccessible(page, "the triggers page with a new URL");
  const first = (await url.textContent())!;

  // Alertmanager calls it: v2 is rolled back to v1; a second call does nothing more.
  const fired = await api.post(first, { data: { status: "firing", alerts: [{ labels: { alertname: "HighErrorRate" } }] } });
  expect(fired.status()).toBe(200);
  expect((await fired.json()).done[0]).toMatchObject({ action: "release.rollback", version: 1, previous_version: 2 });
  expect((await (await api.post(first, { data: "again" })).json()).done).toEqual([]);
  expect((await (await api.get(`${base}/app.json`)).json()).stable_version).toBe(1);

  await page.reload();
  await hydrated(page);
  const row = page.getByTestId("triggers").locator("tbody tr").first();
  await expect(row).toContainText("error rate alert");
  await expect(row).toContainText("2 times");

  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row).toContainText("disabled");
  expect((await api.post(first, { data: "" })).status()).toBe(404);
  await row.getByRole("button", { name: "Enable" }).click();
  await expect(row).not.toContainText("disabled");

  await row.getByRole("button", { name: "Rotate URL" }).click();
  await expect(url).not.toHaveText(first);
  expect((await api.post(first, { data: "" })).status()).toBe(404);

  await row.getByRole("button", { name: "Delete…" }).click();
  await row.getByRole("button", { name: "Delete trigger" }).click();
  await expect(page.getByText("No triggers here yet.")).toBeVisible();
});
