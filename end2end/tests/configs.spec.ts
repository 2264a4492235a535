import { test, expect, signIn, hydrated } from "./fixtures";

test("create a namespace and a config, save v2, compare, release, roll back, find it in the audit", async ({ page }) => {
  const ns = `shop-${Date.now() % 1000000}`;
  await signIn(page);

  // Namespace
  await page.getByText("Create a namespace").click();
  await page.locator("input[name=namespace-name]").fill(ns);
  await page.locator("input[name=namespace-description]").fill("the web shop");
  await page.getByRole("button", { name: "Create namespace" }).click();
  await page.locator(`tr[data-namespace="${ns}"]`).getByRole("link", { name: "staging" }).click();
  await expect(page.getByRole("heading", { name: ns })).toBeVisible();
  await hydrated(page);

  // Config (v1), with live validation on the way
  await page.locator("input[name=config-key]").fill("app.json");
  const editor = page.locator("textarea[name=content]");
  await editor.fill('{\n  "pool": }');
  await expect(page.locator("#editor-error")).toContainText("line 2, column");
  await expect(page.getByRole("button", { name: "Create config (version 1)" })).toBeDisabled();
  await editor.fill('{\n  "pool": 10,\n  "timeout": 30\n}');
  await expect(page.locator("#editor-error")).toHaveText("");
  await page.getByRole("button", { name: "Create config (version 1)" }).click();
  await expect(page.getByRole("heading", { name: /app\.json/ })).toBeVisible();
  await hydrated(page);
  await expect(page.getByTestId("serving-now")).toContainText("Nothing released");

  // Version 2
  const edit = page.locator("textarea[name=content]");
  await edit.fill('{\n  "pool": 20,\n  "timeout": 30\n}');
  await page.locator("input[name=version-message]").fill("bigger pool");
  await page.getByRole("button", { name: "Save version" }).click();
  await expect(page.locator("tr[data-version='2']")).toBeVisible();

  // Side-by-side diff v1 → v2
  await page.locator("tr[data-version='2']").getByRole("link", { name: "Compare" }).click();
  await expect(page.getByRole("heading", { name: "Compare v1 → v2" })).toBeVisible();
  const diff = page.getByTestId("diff");
  await expect(diff).toContainText("+1 added, −1 removed");
  await expect(diff.locator("tr.replace mark").first()).toBeVisible();
  await page.goBack();
  await hydrated(page);

  // Release v2
  await page.locator("tr[data-version='2']").getByRole("button", { name: "Release" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText("Release v2 to staging");
  await dialog.locator("input[name=release-message]").fill("go live");
  await dialog.getByRole("button", { name: "Release v2" }).click();
  await expect(page.getByRole("dialog")).toHaveCount(0);
  await expect(page.getByTestId("serving-now")).toContainText("STABLE v2");

  // Roll back to v1
  await page.locator("tr[data-version='1']").getByRole("button", { name: "Roll back to this version" }).click();
  await expect(page.getByRole("dialog")).toContainText("Roll back staging to v1");
  await page.getByRole("dialog").locator("input[name=release-message]").fill("bad pool size");
  await page.getByRole("dialog").getByRole("button", { name: "Roll back to v1" }).click();
  await expect(page.getByRole("dialog")).toHaveCount(0);
  await expect(page.getByTestId("serving-now")).toContainText("STABLE v1");

  // Both actions in the audit trail, by full-text search
  await page.getByRole("link", { name: "Audit", exact: true }).click();
  await hydrated(page);
  await page.locator("input[name=q]").fill(ns);
  await page.getByRole("button", { name: "Search" }).click();
  const audit = page.getByTestId("audit");
  await expect(audit.locator("[data-action='release.rollback']")).toContainText(`rolled back ${ns}/staging/app.json to v1: 'bad pool size'`);
  await expect(audit.locator("[data-action='release.stable']")).toContainText(`released v2 of ${ns}/staging/app.json: 'go live'`);
  await page.locator("input[name=q]").fill("pool size");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByTestId("audit").locator("[data-action='release.rollback']")).toBeVisible();
});

test("a save based on an old version keeps the edit and shows the newer version against it", async ({ page }) => {
  const ns = `conflict-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  // A namespace without a description renders on the namespace list (an empty
  // text node would break hydration of a directly loaded page).
  await page.goto("/");
  await hydrated(page);
  await expect(page.locator(`tr[data-namespace="${ns}"]`)).toContainText("—");
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "app.yaml", format: "yaml", content: "pool: 10\n" } })).status()).toBe(201);
  await page.goto(`/ns/${ns}/dev/app.yaml`);
  await hydrated(page);
  // The breadcrumb marks only the page itself as current, not the pages above it.
  const crumbs = page.getByRole("navigation", { name: "Breadcrumb" });
  await expect(crumbs.locator("[aria-current=page]")).toHaveText("app.yaml");
  await expect(crumbs.getByRole("link", { name: `${ns} · dev` })).not.toHaveAttribute("aria-current", /.*/);
  await page.locator("textarea[name=content]").fill("pool: 30\n");
  // Meanwhile someone else saves version 2.
  const other = await api.post(`${base}/app.yaml/versions`, { data: { content: "pool: 20\n", base_version: 1, message: "theirs" } });
  expect(other.status()).toBe(201);
  await page.getByRole("button", { name: "Save version" }).click();
  const conflict = page.locator(".conflict");
  await expect(conflict).toContainText("Version 2 was saved by admin while you were editing");
  await expect(conflict.getByTestId("diff")).toContainText("pool: 20");
  await expect(conflict.getByTestId("diff")).toContainText("pool: 30");
  await expect(page.locator("textarea[name=content]")).toHaveValue("pool: 30\n");
  await page.getByRole("button", { name: "Save version" }).click();
  await expect(page.locator("tr[data-version='3']")).toBeVisible();
});

test("a 10,000-line diff renders without freezing the page", async ({ page }) => {
  const ns = `big-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const lines = (f: (i: number) => string) => Array.from({ length: 10000 }, (_, i) => f(i)).join("\n") + "\n";
  const v1 = lines((i) => `key${i}=value${i}`);
  const v2 = lines((i) => (i % 20 === 0 ? `key${i}=changed${i}` : `key${i}=value${i}`));
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "big.properties", format: "properties", content: v1 } })).status()).toBe(201);
  expect((await api.post(`${base}/big.properties/versions`, { data: { content: v2, base_version: 1 } })).status()).toBe(201);
  await page.goto(`/ns/${ns}/dev/big.properties/diff?from=1&to=2`);
  await hydrated(page);
  const crumbs = page.getByRole("navigation", { name: "Breadcrumb" });
  await expect(crumbs.locator("[aria-current]")).toHaveCount(1);
  await expect(crumbs.locator("[aria-current=page]")).toHaveText("compare");
  const diff = page.getByTestId("diff");
  await expect(diff).toContainText("+500 added, −500 removed");
  await expect(diff.getByRole("button", { name: /Show \d+ hidden lines/ }).first()).toBeVisible();
  await expect(page.getByRole("button", { name: "Show more rows" })).toBeVisible();
  // The page still answers input promptly: expanding a collapsed run works.
  await diff.getByRole("button", { name: /Show \d+ hidden lines/ }).first().click();
  await expect(diff.locator("tr.diff-row").first()).toBeVisible();
});

test("delete a config from its danger zone: type the key to confirm, land on the list without it", async ({ page }) => {
  const ns = `gone-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  for (const key of ["app.json", "keep.json"]) {
    expect((await api.post(base, { data: { key, format: "json", content: "{}" } })).status()).toBe(201);
  }
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  await page.goto(`/ns/${ns}/dev/app.json`);
  await hydrated(page);

  const zone = page.getByTestId("danger-zone");
  await expect(zone.getByRole("heading", { name: "Danger zone" })).toBeVisible();
  await zone.getByRole("button", { name: "Delete this config…" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText(`Delete app.json from ${ns} · dev`);
  await expect(dialog).toContainText("the key can be created again, starting at version 1");
  const confirm = dialog.getByRole("button", { name: "Delete app.json" });
  await expect(confirm).toBeDisabled();
  await expect(confirm).toHaveAttribute("title", "Type the config's key to confirm");
  await dialog.locator("input[name=confirm-key]").fill("app.jso");
  await expect(confirm).toBeDisabled();
  // Cancel keeps everything.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByRole("dialog")).toHaveCount(0);
  await zone.getByRole("button", { name: "Delete this config…" }).click();
  await page.getByRole("dialog").locator("input[name=delete-message]").fill("retired");
  await page.getByRole("dialog").locator("input[name=confirm-key]").fill("app.json");
  await expect(page.getByRole("dialog").getByRole("button", { name: "Delete app.json" })).toBeEnabled();
  await page.getByRole("dialog").getByRole("button", { name: "Delete app.json" }).click();

  await expect(page).toHaveURL(new RegExp(`/ns/${ns}/dev$`));
  await expect(page.getByRole("heading", { name: ns })).toBeVisible();
  await expect(page.locator("tr[data-config='keep.json']")).toBeVisible();
  await expect(page.locator("tr[data-config='app.json']")).toHaveCount(0);
  expect((await api.get(`${base}/app.json`)).status()).toBe(404);
  const audit = await (await api.get(`/api/v1/audit?action=config.delete&namespace=${ns}`)).json();
  expect(audit.entries).toHaveLength(1);
  expect(audit.entries[0].details.message).toBe("retired");
});

test("the version history says what each version is, serving now names lanes, the audit reads as sentences", async ({ page }) => {
  const ns = `hist-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "app.yaml", format: "yaml", content: "pool: 1\n" } })).status()).toBe(201);
  for (const n of [2, 3, 4]) {
    const saved = await api.post(`${base}/app.yaml/versions`, { data: { content: `pool: ${n}\n`, base_version: n - 1 } });
    expect(saved.status()).toBe(201);
  }
  // v1 released, then v2, then rolled back to v1; v3 in a lane; v4 only saved.
  for (const version of [1, 2, 1]) {
    expect((await api.post(`${base}/app.yaml/release`, { data: { version, message: `to v${version}` } })).status()).toBe(201);
  }
  const lane = await api.post(`${base}/app.yaml/lanes`, {
    data: { version: 3, selector: "region in (beijing,shanghai)", percentage: 25, message: "try timeout" },
  });
  expect(lane.status()).toBe(201);
  const id = (await lane.json()).id;

  await page.goto(`/ns/${ns}/dev/app.yaml`);
  await hydrated(page);
  const row = (n: number) => page.locator(`tr[data-version='${n}']`);
  await expect(row(1)).toContainText("STABLE v1");
  await expect(row(2)).toContainText(/was stable until \d{4}-\d\d-\d\d \d\d:\d\d, rolled back/);
  await expect(row(3)).toContainText(`in lane ${id} at 25 %`);
  await expect(row(4)).toContainText("never released");
  await expect(page.getByTestId("versions")).not.toContainText("unreleased");
  const serving = page.getByTestId("serving-now");
  await expect(serving).toContainText(`lane ${id}: v3 to 25 % of region in (beijing,shanghai)`);
  await expect(serving).toContainText("DRAFT v4");
  await expect(serving).not.toContainText("DRAFT v3");

  // Releasing v4 supersedes v1; nothing is a draft any more.
  expect((await api.post(`${base}/app.yaml/release`, { data: { version: 4 } })).status()).toBe(201);
  await page.reload();
  await hydrated(page);
  await expect(row(4)).toContainText("STABLE v4");
  await expect(row(1)).toContainText(/was stable until .*, superseded by v4/);
  await expect(row(2)).toContainText("rolled back");
  await expect(page.getByTestId("serving-now")).not.toContainText("DRAFT");

  // Every action of the story as a sentence.
  await page.goto(`/audit?namespace=${ns}`);
  await hydrated(page);
  const audit = page.getByTestId("audit");
  const path = `${ns}/dev/app.yaml`;
  await expect(audit.locator("[data-action='config.create']")).toContainText(`admin created ${path} (yaml, v1)`);
  await expect(audit.locator("[data-action='version.create']").first()).toContainText(`admin saved v4 of ${path} (+1 −1)`);
  await expect(audit.locator("[data-action='release.rollback']")).toContainText(`admin rolled back ${path} to v1: 'to v1'`);
  await expect(audit.locator("[data-action='release.stable']").first()).toContainText(`admin released v4 of ${path}`);
  await expect(audit.locator("[data-action='lane.create']")).toContainText(
    `admin started gray lane ${id} on ${path} serving v3 to 25 % of region in (beijing,shanghai): 'try timeout'`,
  );
  await expect(audit.locator("[data-action='namespace.create']")).toContainText(`admin created namespace ${ns}`);
  await expect(audit.locator(".sentence", { hasText: "lane.create" })).toHaveCount(0);
});

test("the diff page switches between split and unified (remembered) and can hide whitespace", async ({ page }) => {
  const ns = `ws-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "app.yaml", format: "yaml", content: "a:\n  b: 1\n  c: 2\n" } })).status()).toBe(201);
  expect((await api.post(`${base}/app.yaml/versions`, { data: { content: "a:\n    b: 1\n    c: 3\n", base_version: 1 } })).status()).toBe(201);

  await page.goto(`/ns/${ns}/dev/app.yaml/diff?from=1&to=2`);
  await hydrated(page);
  const diff = page.getByTestId("diff");
  await expect(diff).toContainText("+2 added, −2 removed");
  await expect(diff).toHaveAttribute("data-layout", "split");
  await expect(diff.locator("tr.diff-row").first().locator("td")).toHaveCount(6);

  // Unified: one column, the old line (−) above the new one (+).
  await page.getByRole("button", { name: "Unified" }).click();
  await expect(diff).toHaveAttribute("data-layout", "unified");
  await expect(page.getByRole("button", { name: "Unified" })).toHaveAttribute("aria-pressed", "true");
  const replaced = diff.locator("tr.diff-row.replace");
  await expect(replaced).toHaveCount(4);
  await expect(replaced.nth(0).locator("td.sign")).toHaveText("−");
  await expect(replaced.nth(1).locator("td.sign")).toHaveText("+");
  await expect(diff.locator("tr.diff-row").first().locator("td")).toHaveCount(4);

  // Remembered across visits.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("diff")).toHaveAttribute("data-layout", "unified");

  // Hide whitespace: only the real change is left, and the address keeps it.
  await page.getByLabel("Hide whitespace").check();
  await expect(page).toHaveURL(/whitespace=hide/);
  await expect(page.getByTestId("diff")).toContainText("+1 added, −1 removed");
  await expect(page.getByTestId("diff")).toHaveAttribute("data-layout", "unified");
  await page.getByRole("button", { name: "Split" }).click();
  await expect(page.getByTestId("diff")).toHaveAttribute("data-layout", "split");
  await page.getByLabel("Hide whitespace").uncheck();
  await expect(page.getByTestId("diff")).toContainText("+2 added, −2 removed");
});
