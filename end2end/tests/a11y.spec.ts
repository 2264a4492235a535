import { test, expect, signIn, hydrated, subscribe, expectAccessible, expectNoSidewaysScroll } from "./fixtures";
import type { Locator, Page, TestInfo } from "@playwright/test";

// Every page, on the desktop and on a 390×844 phone: axe-core finds nothing serious or critical,
// nothing scrolls sideways on the phone, the top bar's menu reaches every link, and the
// confirmation dialogs can be operated with the keyboard.

const phone = (info: TestInfo) => info.project.name === "phone";

/** `"k1": 1, …` over `lines` lines: long enough that a diff of it outgrows the window. */
function longJson(lines: number, value: (i: number) => number) {
  const body = Array.from({ length: lines }, (_, i) => `  "key_${i + 1}": ${value(i)}`).join(",\n");
  return `{\n${body}\n}\n`;
}

/** A config in prod (`lines` long) with v1 and v2 released (v2 stable), v3 saved and running in a lane with a
 *  rollout plan (an hour per step, so it stays running), and three subscribers connected. */
async function setUp(page: Page, baseURL: string, prefix: string, lines = 80) {
  const ns = `${prefix}-${Date.now() % 1000000}`;
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/prod/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: longJson(lines, (i) => i + 1) } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: longJson(lines, (i) => (i + 1) * 2), base_version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 2 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: longJson(lines, (i) => (i + 1) * 3), base_version: 2 } })).status()).toBe(201);
  const plan = {
    steps: [{ percentage: 10, hold_secs: 3600 }, { percentage: 50, hold_secs: 3600 }],
    guards: [{ kind: "reports" }],
    finish: "hold",
  };
  const lane = await api.post(`${base}/app.json/lanes`, { data: { version: 3, selector: "region=beijing", plan } });
  expect(lane.status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `sub-${ns}`, role: "subscriber" } })).json()).token;
  const closers = [
    await subscribe(baseURL, token, ns, "prod", "bj-1", "region=beijing"),
    await subscribe(baseURL, token, ns, "prod", "sh-1", "region=shanghai"),
    await subscribe(baseURL, token, ns, "prod", "sh-2", "region=shanghai"),
  ];
  return { ns, close: () => closers.forEach((c) => c()) };
}

async function check(page: Page, info: TestInfo, where: string) {
  await expectAccessible(page, `${where} (${info.project.name})`);
  if (phone(info)) await expectNoSidewaysScroll(page, where);
}

/** The dialog's action bar (its buttons) is inside the window, and on a phone the dialog fills it. */
async function expectBarInView(page: Page, dialog: Locator, info: TestInfo) {
  const window = page.viewportSize()!;
  const cancel = (await dialog.getByRole("button", { name: "Cancel" }).boundingBox())!;
  expect(cancel.y + cancel.height).toBeLessThanOrEqual(window.height);
  expect(cancel.y).toBeGreaterThanOrEqual(0);
  if (phone(info)) {
    const box = (await dialog.boundingBox())!;
    expect(Math.round(box.width)).toBe(window.width);
    expect(Math.round(box.height)).toBe(window.height);
  }
}

/** Opens a dialog with `opener`, checks it, closes it with Esc: focus goes back to the opener. */
async function throughDialog(page: Page, info: TestInfo, opener: Locator, title: RegExp | string) {
  await opener.click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  await expect(dialog).toHaveAccessibleName(title);
  // Focus starts in the dialog's first field, the message box.
  await expect(dialog.locator("input").first()).toBeFocused();
  await expectBarInView(page, dialog, info);
  await check(page, info, `the dialog "${title}"`);
  await page.keyboard.press("Escape");
  await expect(page.getByRole("dialog")).toHaveCount(0);
  await expect(opener).toBeFocused();
}

test("every page passes axe and fits the screen @phone", async ({ page, baseURL }, info) => {
  // Fifteen pages and dialogs, each checked by axe.
  test.setTimeout(180_000);
  await page.goto("/login");
  await hydrated(page);
  await check(page, info, "the sign-in page");
  await signIn(page);
  // A short config: axe checks every line of a diff, and these dialogs need not scroll.
  const { ns, close } = await setUp(page, baseURL!, "a11y", 12);
  try {
    const pages: [string, string][] = [
      ["/", "Namespaces"],
      [`/ns/${ns}/prod`, ns],
      [`/ns/${ns}/prod/app.json/diff?from=1&to=3`, "Compare v1 → v3"],
      [`/instances/${ns}/prod`, "Instances"],
      ["/audit", "Audit"],
      ["/admin/users", "Users"],
      ["/admin/tokens", "API tokens"],
      ["/admin/environments", "Environments"],
      ["/admin/notifications", "Notifications"],
      [`/triggers?ns=${ns}&env=prod`, "Triggers"],
    ];
    for (const [path, heading] of pages) {
      await page.goto(path);
      await hydrated(page);
      await expect(page.getByRole("heading", { level: 1 }).first()).toContainText(heading);
      await check(page, info, path);
    }

    // The config page with a lane and its running plan, then each of its dialogs open.
    await page.goto(`/ns/${ns}/prod/app.json`);
    await hydrated(page);
    const lane = page.getByTestId("active-lanes").locator("li.lane").first();
    await expect(lane.getByTestId("plan-timeline")).toContainText("running");
    await expect(page.getByTestId("versions")).toContainText("v3");
    await check(page, info, "the config page");
    const versions = page.getByTestId("versions");
    await throughDialog(page, info, versions.locator('tr[data-version="3"]').getByRole("button", { name: "Release" }), "Release v3 to prod");
    await throughDialog(page, info, versions.locator('tr[data-version="1"]').getByRole("button", { name: "Roll back to this version" }), "Roll back prod to v1");
    await throughDialog(page, info, lane.getByRole("button", { name: "Promote…" }), /^Promote lane \d+/);
    await throughDialog(page, info, lane.getByRole("button", { name: "Abort…" }), /^Abort lane \d+/);
    await throughDialog(page, info, lane.getByRole("button", { name: "Force advance…" }), /^Force lane \d+ to step 2/);
    await throughDialog(page, info, page.getByRole("button", { name: "Delete this config…" }), `Delete app.json from ${ns} · prod`);
  } finally {
    close();
  }
});

test("a dialog keeps focus inside, scrolls its diff under a fixed action bar, and closes on Esc @phone", async ({ page, baseURL }, info) => {
  await signIn(page);
  const { ns, close } = await setUp(page, baseURL!, "dialog");
  try {
    await page.goto(`/ns/${ns}/prod/app.json`);
    await hydrated(page);
    const opener = page.getByTestId("versions").locator('tr[data-version="1"]').getByRole("button", { name: "Roll back to this version" });
    await opener.click();
    const dialog = page.getByRole("dialog");
    await expect(dialog.getByTestId("diff")).toContainText("+80 added, −80 removed");
    await expect(dialog.locator("input[name=release-message]")).toBeFocused();

    // The diff scrolls inside the dialog; the message, the typed confirmation and the buttons
    // stay in the window.
    const body = dialog.locator(".dialog-body");
    expect(await body.evaluate((e) => e.scrollHeight > e.clientHeight)).toBe(true);
    await body.evaluate((e) => (e.scrollTop = e.scrollHeight));
    await expectBarInView(page, dialog, info);
    for (const field of ["input[name=release-message]", "input[name=confirm-env]"]) {
      const box = (await dialog.locator(field).boundingBox())!;
      expect(box.y + box.height).toBeLessThanOrEqual(page.viewportSize()!.height);
    }

    // Tab and Shift+Tab go round inside the dialog, never out of it.
    const focused = () =>
      page.evaluate(() => {
        const a = document.activeElement!;
        return { inside: !!a.closest("[role=dialog]"), what: a.outerHTML.slice(0, 60) };
      });
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press("Tab");
      const f = await focused();
      expect(f.inside, `Tab ${i + 1} left the dialog for ${f.what}`).toBe(true);
      seen.push(f.what);
    }
    // Round and round: the message box came back after the last control.
    expect(seen.filter((w) => w.includes("release-message")).length).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press("Shift+Tab");
      const f = await focused();
      expect(f.inside, `Shift+Tab ${i + 1} left the dialog for ${f.what}`).toBe(true);
    }
    // A click on the backdrop leaves focus in the dialog.
    await page.mouse.click(2, 2);
    await page.keyboard.press("Tab");
    expect((await focused()).inside).toBe(true);

    // The rollback needs "prod" typed; Esc closes without acting, and focus is back on the opener.
    await dialog.locator("input[name=confirm-env]").fill("prod");
    await expect(dialog.getByRole("button", { name: "Roll back to v1" })).toBeEnabled();
    await page.keyboard.press("Escape");
    await expect(page.getByRole("dialog")).toHaveCount(0);
    await expect(opener).toBeFocused();
    await expect(page.getByTestId("serving-now")).toContainText("STABLE v2");
  } finally {
    close();
  }
});

test("on a phone the top bar is a menu that reaches every link @phone", async ({ page }, info) => {
  test.skip(!phone(info), "the menu button exists on narrow screens only");
  await signIn(page);
  const menu = page.getByRole("button", { name: "Menu" });
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(menu).toHaveAttribute("aria-expanded", "false");
  await expect(nav).toBeHidden();
  const links: [string, RegExp, string][] = [
    ["Audit", /\/audit$/, "Audit"],
    ["Users", /\/admin\/users$/, "Users"],
    ["Tokens", /\/admin\/tokens$/, "API tokens"],
    ["Environments", /\/admin\/environments$/, "Environments"],
    ["Namespaces", /\/$/, "Namespaces"],
  ];
  for (const [name, url, heading] of links) {
    await menu.click();
    await expect(menu).toHaveAttribute("aria-expanded", "true");
    const controls = await menu.getAttribute("aria-controls");
    await expect(page.locator(`#${controls}`)).toBeVisible();
    await check(page, info, `the open menu before ${name}`);
    await nav.getByRole("link", { name }).click();
    await expect(page).toHaveURL(url);
    await expect(page.getByRole("heading", { level: 1 }).first()).toContainText(heading);
    // Following a link closes the menu.
    await expect(menu).toHaveAttribute("aria-expanded", "false");
  }
  // Esc closes the menu and gives focus back to its button; Sign out is in it too.
  await menu.click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await nav.getByRole("link", { name: "Audit" }).focus();
  await page.keyboard.press("Escape");
  await expect(menu).toHaveAttribute("aria-expanded", "false");
  await expect(menu).toBeFocused();
  await menu.click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
});

test("a role change in the users table waits for Save and says what changed", async ({ page }) => {
  await signIn(page);
  const name = `dora${Date.now() % 100000}`;
  const created = await page.request.post("/api/v1/users", { data: { username: name, password: `${name}-password`, role: "editor" } });
  expect(created.status()).toBe(201);
  const roleNow = async () => ((await (await page.request.get("/api/v1/users")).json()) as any[]).find((u) => u.username === name).role;
  await page.goto("/admin/users");
  await hydrated(page);
  const row = page.locator(`tr[data-user="${name}"]`);
  const save = row.getByRole("button", { name: "Save" });
  await expect(save).toBeDisabled();
  await row.getByLabel(`Role of ${name}`).selectOption("releaser");
  // Nothing is saved by choosing: the row says so, and Save is offered.
  await expect(row).toContainText("not saved yet");
  await expect(save).toBeEnabled();
  expect(await roleNow()).toBe("editor");
  await save.click();
  await expect(page.getByTestId("user-saved")).toHaveText(`✓ ${name} is now releaser`);
  expect(await roleNow()).toBe("releaser");
  await expect(row.getByLabel(`Role of ${name}`)).toHaveValue("releaser");
  await expect(row.getByRole("button", { name: "Save" })).toBeDisabled();
});

test("the weight slider speaks the count the lane's selector matches", async ({ page, baseURL }) => {
  await signIn(page);
  const ns = `slider-${Date.now() % 1000000}`;
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/staging/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 10}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `sub-${ns}`, role: "subscriber" } })).json()).token;
  const closers = [
    await subscribe(baseURL!, token, ns, "staging", "bj-1", "region=beijing"),
    await subscribe(baseURL!, token, ns, "staging", "sh-1", "region=shanghai"),
    await subscribe(baseURL!, token, ns, "staging", "sh-2", "region=shanghai"),
  ];
  try {
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);
    await page.locator("input[name=lane-selector]").fill("region=beijing");
    const weight = page.getByLabel("Weight in percent");
    await weight.fill("100");
    await weight.press("Tab");
    await expect(page.getByTestId("lane-preview")).toContainText("matches 1 of 3 connected instances");
    // Not "about 3 of 3": two of the three are outside the selector.
    await expect(page.getByRole("slider", { name: "Weight" })).toHaveAttribute("aria-valuetext", "100 percent, about 1 of 3 instances");
  } finally {
    closers.forEach((c) => c());
  }
});
