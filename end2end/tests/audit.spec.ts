import { test, expect, signIn, hydrated } from "./fixtures";

// Issue 26, point 4: the audit trail reads like it looks.
test("the audit finds the words on screen, picks actors and actions, and shows a rollback's change", async ({ page }) => {
  const ns = `audit-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "app.yaml", format: "yaml", content: "pool: 10\n" } })).status()).toBe(201);
  expect((await api.post(`${base}/app.yaml/versions`, { data: { content: "pool: 20\n", base_version: 1, message: "bigger" } })).status()).toBe(201);
  expect((await api.post(`${base}/app.yaml/release`, { data: { version: 2, message: "go" } })).status()).toBe(201);
  expect((await api.post(`${base}/app.yaml/release`, { data: { version: 1, message: "too big" } })).status()).toBe(201);

  // The top bar's link opens the whole trail (no filter at all).
  await page.getByRole("link", { name: "Audit", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Audit trail" })).toBeVisible();
  const audit = page.getByTestId("audit");
  await expect(audit.locator("li").first()).toBeVisible();
  await expect(page.getByRole("alert")).toHaveCount(0);
  await hydrated(page);

  // The words of the sentence, not the stored action name.
  await page.locator("input[name=q]").fill(`rolled back ${ns}`);
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/q=rolled/);
  await expect(audit.locator("li")).toHaveCount(1);
  const rollback = audit.locator("[data-action='release.rollback']");
  await expect(rollback).toContainText(`rolled back ${ns}/dev/app.yaml to v1: 'too big'`);

  // Its details: links to the config and the version, and the change itself.
  await rollback.locator("summary").click();
  await expect(rollback.getByRole("link", { name: `${ns}/dev/app.yaml` })).toHaveAttribute("href", `/ns/${ns}/dev/app.yaml`);
  await expect(rollback.getByRole("link", { name: "v1", exact: true })).toHaveAttribute("href", `/ns/${ns}/dev/app.yaml/diff?from=2&to=1`);
  await expect(rollback.locator("dl.audit-details")).toContainText("too big");
  await rollback.getByRole("button", { name: "Show the change v2 → v1" }).click();
  const diff = rollback.getByTestId("diff");
  await expect(diff).toContainText("pool: 20");
  await expect(diff).toContainText("pool: 10");

  // Action and actor are pickers of the known values; they apply at once.
  await page.locator("input[name=q]").fill(ns);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByLabel("Action").selectOption("release.stable");
  await expect(page).toHaveURL(/action=release\.stable/);
  await expect(audit.locator("li")).toHaveCount(1);
  await expect(audit.locator("[data-action='release.stable']")).toContainText(`released v2 of ${ns}/dev/app.yaml`);
  await page.getByLabel("Action").selectOption({ label: "every release action" });
  await expect(audit.locator("li")).toHaveCount(2);
  const actors = await page.getByLabel("Actor").locator("option").allTextContents();
  expect(actors).toContain("admin");
  expect(actors).toContain("system");
  await page.getByLabel("Actor").selectOption("system");
  await expect(page).toHaveURL(/actor=system/);
  await expect(page.getByText("No entries match.")).toBeVisible();
});
