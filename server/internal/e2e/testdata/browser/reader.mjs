// A namespace user in the dev UI (start-dev --ui-permissions default:read):
// without the ui-friendly-reads bundle the UI's GetClusterInfo call is refused
// and the UI sends the user to the login page; with it the user works in
// default.
//
// UI_URL, WORKFLOW_ID (in default), BUNDLE ("none" or "ui-friendly-reads"), OUT_DIR
import { env, expect, newUser, run, step } from './lib.mjs';

await run(async () => {
  const user = await newUser(`reader-${env.BUNDLE}`);
  try {
    if (env.BUNDLE === 'none') {
      await step(user, 'sent to the login page', async (page) => {
        await page.goto(env.UI_URL);
        await page.waitForURL(/\/login/);
        const info = user.api.find((r) => r.path === '/api/v1/cluster-info');
        // (The page leaves before the body can be read; TestWebUIDevIdentityIsAuthorized checks the reason.)
        expect(info?.status === 403, `cluster-info: ${JSON.stringify(info)}, want a 403`);
      });
      return;
    }
    await step(user, 'works in default', async (page) => {
      await page.goto(env.UI_URL);
      await page.waitForURL(/\/namespaces\/default\/workflows/);
      await page.getByRole('link', { name: env.WORKFLOW_ID }).first().waitFor();
      expect(!page.url().includes('/login'), 'sent to the login page');
    });
  } finally {
    await user.context.close();
  }
});
