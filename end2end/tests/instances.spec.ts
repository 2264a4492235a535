import { test, expect, signIn, hydrated, subscribe } from "./fixtures";

test("the instances page updates live when a subscriber connects and when a lane moves", async ({ page, baseURL }) => {
  const ns = `live-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"a": 1}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"a": 2}\n', base_version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `live-${ns}`, role: "subscriber" } })).json()).token;

  await page.goto(`/instances/${ns}/dev`);
  await hydrated(page);
  await expect(page.getByText("No instances here yet")).toBeVisible();

  const close = await subscribe(baseURL!, token, ns, "dev", "pod-bj-1", "region=beijing");
  try {
    // No reload: the row arrives over the live feed.
    const row = page.locator('tr[data-client="pod-bj-1"]');
    await expect(row).toBeVisible();
    await expect(row).toContainText("STABLE v1");
    await expect(row).toContainText("connected");

    // A lane that covers it: the row moves to the gray version, live.
    const lane = await api.post(`${base}/app.json/lanes`, { data: { version: 2, selector: "region=beijing", percentage: 100 } });
    expect(lane.status()).toBe(201);
    await expect(row).toContainText("GRAY v2");
  } finally {
    close();
  }
  // Disconnected instances stay listed as disconnected.
  await expect(page.locator('tr[data-client="pod-bj-1"]')).toContainText("disconnected");
  // An instance without labels; the page loaded directly still hydrates.
  const bare = await subscribe(baseURL!, token, ns, "dev", "pod-bare", "");
  try {
    await page.reload();
    await hydrated(page);
    await expect(page.locator('tr[data-client="pod-bare"]')).toContainText("no labels");
  } finally {
    bare();
  }
});

test("rollout progress on the config page follows subscribers, reports and a new lane live", async ({ page, baseURL }) => {
  const ns = `roll-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/dev/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"a": 1}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"a": 2}\n', base_version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `roll-${ns}`, role: "subscriber" } })).json()).token;

  await page.goto(`/ns/${ns}/dev/app.json`);
  await hydrated(page);
  const rollout = page.getByTestId("rollout");
  await expect(rollout).toContainText("0 instance(s) run stable v1");

  const close = await subscribe(baseURL!, token, ns, "dev", "pod-1", "region=beijing");
  try {
    // No reload: the subscriber, its report and a lane arrive over the live feed.
    await expect(rollout).toContainText("1 instance(s) run stable v1; 0 applied");
    const report = await api.fetch("/api/v1/report", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      data: { client_id: "pod-1", namespace: ns, env: "dev", key: "app.json", version: 1, status: "applied" },
    });
    expect(report.status()).toBe(204);
    await expect(rollout).toContainText("1 instance(s) run stable v1; 1 applied");
    const lane = await api.post(`${base}/app.json/lanes`, { data: { version: 2, selector: "region=beijing", percentage: 100 } });
    expect(lane.status()).toBe(201);
    const id = (await lane.json()).id;
    await expect(rollout).toContainText(`1 instance(s) run lane ${id} (v2)`);
    await expect(rollout).toContainText("0 instance(s) run stable v1");
  } finally {
    close();
  }
});
