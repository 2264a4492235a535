import { test, expect, signIn, hydrated } from "./fixtures";

// Issue 29, point 3 (the Deliveries page): an admin adds a channel, sends a test, and reads
// what became of it. The e2e server allows no loopback fetches, so the test delivery is refused
// by the outbound policy, and the page says so; delivered messages are covered by the API tests.
test("an admin adds a channel, sends a test and sees its delivery's fate", async ({ page }) => {
  await signIn(page);
  await page.getByRole("link", { name: "Notifications" }).click();
  await expect(page.getByRole("heading", { name: "Notifications" })).toBeVisible();
  await hydrated(page);
  const name = `ops-${Date.now() % 100000}-${Math.floor(Math.random() * 1000)}`;

  // An address the policy denies is refused at once, naming why.
  await page.locator("input[name=channel-name]").fill(name);
  await page.locator("input[name=channel-url]").fill("http://127.0.0.1:9/hook");
  await page.locator("input[name=channel-secret]").fill("a-secret-of-at-least-16");
  await page.getByRole("button", { name: "Add channel" }).click();
  await expect(page.getByRole("alert")).toContainText("outbound policy");

  // A name passes when the channel is made; the policy is applied at every connection.
  await page.locator("input[name=channel-url]").fill("http://localhost:9/services/T0/B0/secretpart");
  await page.locator("input[name=channel-events]").fill("release, lane.*");
  await page.getByRole("button", { name: "Add channel" }).click();
  const row = page.locator(`tr[data-channel="${name}"]`);
  await expect(row).toBeVisible();
  await expect(row).toContainText("release, lane.*");
  await expect(row).toContainText("http://localhost:9/services/T0/B0/secr…");
  await expect(row).not.toContainText("secretpart");

  await row.getByRole("button", { name: "Send a test" }).click();
  await row.getByRole("link", { name: "Deliveries" }).click();
  await expect(page.getByRole("heading", { name: `Deliveries of ${name}` })).toBeVisible();
  await hydrated(page);
  const delivery = page.getByTestId("deliveries").locator("tbody tr").first();
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(delivery).toContainText("outbound policy", { timeout: 1000 });
  }).toPass();
  await expect(delivery).toContainText("test");
  await expect(delivery).toContainText("pending");

  // Back on the list, it can be deleted.
  await page.getByRole("link", { name: "← Notifications" }).click();
  await row.getByRole("button", { name: "Delete…" }).click();
  await row.getByRole("button", { name: "Delete channel" }).click();
  await expect(row).toHaveCount(0);
});
