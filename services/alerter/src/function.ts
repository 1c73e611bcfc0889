// The alerter as a scheduled function: one `alert --once` run per invocation (an Amazon
// EventBridge schedule on a Lambda, or any scheduler that calls a handler), configured from the
// environment exactly as `ebbflow alert` is (EBBFLOW_RULES, EBBFLOW_CLICKHOUSE, EBBFLOW_ALERTMANAGER,
// EBBFLOW_WEBHOOK, EBBFLOW_MIGRATE…). A run that could not evaluate a rule rejects, so the
// scheduler reports it; a repeated run finds its slots claimed and sends nothing twice.
import { loadAlerterConfig } from './config.ts'
import { start } from './main.ts'

export async function handler(): Promise<{ mode: string }> {
  const run = await start(loadAlerterConfig({ once: 'true' }))
  return { mode: run.mode }
}
