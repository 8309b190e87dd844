// Dev mode: the Web UI of start-dev, acting as its dev identity, shows the
// namespaces, a workflow started by an SDK client, and its detail page.
//
// UI_URL, WORKFLOW_ID, WORKFLOW_TYPE, NAMESPACES (comma-separated), OUT_DIR
import { env, expect, newUser, run, step } from './lib.mjs';

await run(async () => {
  const user = await newUser('dev');
  const ui = env.UI_URL;
  try {
    await step(user, 'UI loads and opens the default namespace', async (page) => {
      await page.goto(ui);
      await page.waitForURL(/\/namespaces\/default\/workflows/);
      await page.getByText(env.WORKFLOW_ID).first().waitFor();
    });
    await step(user, 'namespaces are listed', async (page) => {
      await page.goto(`${ui}/namespaces`);
      for (const ns of env.NAMESPACES.split(',')) {
        await page.getByRole('link', { name: ns, exact: true }).first().waitFor();
      }
    });
    await step(user, 'workflow list shows the SDK workflow', async (page) => {
      await page.goto(`${ui}/namespaces/default/workflows`);
      const row = page.getByRole('link', { name: env.WORKFLOW_ID });
      await row.first().waitFor();
      expect(await page.getByText(env.WORKFLOW_TYPE).count() > 0, `workflow type ${env.WORKFLOW_TYPE} not shown`);
    });
    await step(user, 'workflow detail page', async (page) => {
      await page.getByRole('link', { name: env.WORKFLOW_ID }).first().click();
      await page.waitForURL(new RegExp(`/workflows/${env.WORKFLOW_ID}/`));
      await page.getByText('Completed').first().waitFor();
      await page.getByText(env.WORKFLOW_TYPE).first().waitFor();
      const denied = user.api.filter((r) => r.status >= 400);
      expect(denied.length === 0, `API calls failed: ${JSON.stringify(denied)}`);
    });
  } finally {
    await user.context.close();
  }
});
