// The acceptance suite in the embedded mode: `ebbflow up --tokens-file` as a child process, as a
// user runs it (capture → in-process queue → ingester → chDB → GraphQL). The forced loss runs
// in a second, short `ebbflow up` whose ring buffers are one page.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { isRoot } from '../support/capture.ts'
import {
  acceptanceSuite,
  bin,
  COUNTER_INTERVAL_MS,
  execStorm,
  freePort,
  Proc,
  post,
  until,
  type World,
} from './scenario.ts'

async function up(
  w: World,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ proc: Proc; url: string }> {
  const port = await freePort()
  const proc = w.track(
    new Proc(
      spawn(bin, ['up', '--port', String(port), ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
      }),
    ),
  )
  await proc.output(/ebbflow is up/, 'ebbflow up to start', 120_000)
  return { proc, url: `http://127.0.0.1:${port}/graphql` }
}

const HEALTH = `query($node: String) { collectorHealth(node: $node) {
  node totalDrops drops { family reason count } } }`

acceptanceSuite({
  name: 'embedded',
  skip: isRoot() ? false : 'needs root to load BPF programs and create cgroups',
  async start(w: World) {
    const lossEnv: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_NAME: w.lossNode,
      EBBFLOW_KUBERNETES: 'off',
      EBBFLOW_RING_BUFFER_BYTES: '4096',
      EBBFLOW_COUNTER_INTERVAL_MS: String(COUNTER_INTERVAL_MS),
    }
    delete lossEnv.KUBECONFIG
    const [main, loss] = await Promise.all([
      up(
        w,
        [
          '--data-dir',
          join(w.dir, 'data'),
          '--tokens-file',
          w.tokensFile,
          // The built-in shell rule, in-process, on a short interval so the test need not wait.
          '--rules',
          w.shellRuleFile('2s'),
        ],
        w.collectorEnv(),
      ),
      up(w, ['--data-dir', join(w.dir, 'loss'), '--families', 'exec'], lossEnv),
    ])
    // The loss run goes on beside the scenario: a storm, then the drops its API reports.
    const lossDone = (async () => {
      await execStorm()
      const answer = await until(
        'drops reported by the loss node',
        () => post(loss.url, undefined, HEALTH, { node: w.lossNode }),
        (r) => r.data?.collectorHealth?.[0]?.totalDrops > 0,
        60_000,
        500,
      )
      return answer.data.collectorHealth as unknown
    })()
    lossDone.catch(() => {})
    return {
      // Rows reach chDB a moment after capture: checks poll for them.
      pollMs: 30_000,
      settle: async () => main.url,
      lossHealth: () => lossDone,
      async stop() {
        const codes = await Promise.all([main.proc.stop(), loss.proc.stop()])
        if (codes.some((c) => c !== 0))
          throw new Error(
            `ebbflow up exited ${codes.join(', ')}: ${main.proc.stderr.slice(-2000)} ${loss.proc.stderr.slice(-2000)}`,
          )
      },
    }
  },
})
