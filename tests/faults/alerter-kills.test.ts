// `ebbflow alert` (the CLI process, chDB store, a local webhook receiver) SIGKILLed at random
// points of its evaluations (CI: 3 times; soak: 20) and started again on the same folder.
//
// What "window" and "duplicate" mean comes from the alerter: each finished evaluation of a
// rule records the window [window_start, window_end) its SQL covered, and the next one starts
// where the last finished one ended (less the lag margin), so a slot lost to a kill is covered
// by the next. No window missed = the finished windows, in slot order, join without a gap from
// the first evaluation to the last. A notification is a webhook POST of one transition (its id
// is the rule, the alert, the new state and when it became active); a duplicate is the same
// state announced twice in a row for one alert, or a transition POSTed again with another
// idempotency-key or body. The same POST again (a kill after the POST, before its record) is
// at-least-once delivery that a receiver drops by its idempotency-key: counted, not refused.
//
// The rule's value is a function of its window's end that the test knows: 1 in even 2-second
// periods of the clock, 0 in odd ones, so the alert fires and resolves every 2 s by itself.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Received, WebhookReceiver } from '../support/webhook-receiver.ts'
import { Cli, queryFolder, rng, SOAK, sleep, waitFor } from './support.ts'

const KILLS = SOAK ? 20 : 3
const SEED = Number(process.env.EBBFLOW_FAULT_SEED ?? Date.now() % 1_000_000)
const PERIOD_MS = 2000
const LAG_MARGIN_MS = 1000
/** The rule's value at a time, as the test defines it. */
const valueAt = (ms: number) => Math.floor(ms / PERIOD_MS) % 2

const RULES = `rules:
  - name: Flip
    every: 1s
    condition: value > 0
    sql: |
      SELECT 'flip' AS label_key,
             toUInt8(intDiv(toUnixTimestamp64Milli({window_end:DateTime64(3, 'UTC')}), ${PERIOD_MS}) % 2) AS value
`

describe('alerter SIGKILLed mid-evaluation', { timeout: SOAK ? 600_000 : 90_000 }, () => {
  let tmp: string
  let hook: WebhookReceiver
  const procs: Cli[] = []

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ebbflow-alert-kills-'))
    writeFileSync(join(tmp, 'rules.yaml'), RULES)
    hook = await new WebhookReceiver().start()
  })
  after(async () => {
    for (const p of procs) p.kill()
    await Promise.all(procs.map((p) => p.exited))
    await hook?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it(`misses no window and sends no notification twice (${KILLS} kills)`, async () => {
    const random = rng(SEED)
    const dataDir = join(tmp, 'data')
    const run = () => {
      const p = new Cli(
        ['alert', '--rules', join(tmp, 'rules.yaml'), '--data-dir', dataDir, '--webhook', hook.url],
        {
          EBBFLOW_ALERT_LAG_MARGIN: `${LAG_MARGIN_MS}ms`,
          // A delivery claimed by a killed process is taken over once its lease (attempts ×
          // timeout + backoff + 5 s) runs out: short here, so the test sees it within seconds.
          EBBFLOW_ALERT_HTTP_TIMEOUT: '1s',
          EBBFLOW_ALERT_WEBHOOK_ATTEMPTS: '1',
          EBBFLOW_LOG_LEVEL: 'debug',
        },
      )
      procs.push(p)
      return p
    }

    for (let k = 0; k < KILLS; k++) {
      const p = run()
      await p.waitForLine(/"msg":"alerter running"/, 30_000)
      // Evaluations start at each second's boundary: a kill some way after one lands in the
      // middle of an evaluation (its claim, query, state writes or delivery) more often than not.
      const evaluated = p.matching(/"msg":"rule evaluated"/).length
      await sleep(1000 + Math.floor(random() * 3) * 1000 - (Date.now() % 1000) + random() * 300)
      p.kill('SIGKILL')
      await p.exited
      assert.ok(p.matching(/"msg":"rule evaluated"/).length >= evaluated)
    }
    // The last one runs until every transition it knows of reached the receiver, then stops.
    const last = run()
    await last.waitForLine(/"msg":"alerter running"/, 30_000)
    // Until the receiver has at least two transitions (a firing and a resolve): on a quiet
    // machine the kills can come so fast that fewer periods than that have passed by now.
    await waitFor(
      'two transitions at the receiver',
      () => new Set(hook.received.map((r) => r.body.transition.id)).size >= 2,
      60_000,
    )
    await sleep(2 * PERIOD_MS + 500)
    await last.stop()
    // A transition whose delivery a killed process had claimed waits out that claim's lease
    // (about 7 s here) before another process takes it; on a loaded machine the last run can
    // stop before then. Each stored transition must still reach the receiver: as an operator's
    // next start would, one more run delivers what is left, and the checks below see it all.
    const storedTransitions = () =>
      queryFolder<{ id: string }>(
        dataDir,
        `SELECT DISTINCT id FROM ebbflow.alert_transitions WHERE rule = 'Flip'
         AND to_state IN ('firing', 'resolved')`,
      )
    const received = () => new Set(hook.received.map((r) => r.body.transition.id as string))
    const left = storedTransitions().filter((t) => !received().has(t.id))
    if (left.length > 0) {
      const catchUp = run()
      await catchUp.waitForLine(/"msg":"alerter running"/, 30_000)
      await waitFor(
        `the ${left.length} transition(s) still undelivered at the receiver`,
        () => left.every((t) => received().has(t.id)),
        30_000,
      )
      await catchUp.stop()
    }

    const evaluations = queryFolder<{
      slot: string
      phase: string
      window_start: string
      window_end: string
    }>(
      dataDir,
      `SELECT slot, toString(phase) AS phase, toUnixTimestamp64Milli(window_start) AS window_start,
              toUnixTimestamp64Milli(window_end) AS window_end
       FROM ebbflow.alert_evaluations WHERE rule = 'Flip' ORDER BY slot, phase`,
    )
    const done = evaluations.filter((e) => e.phase === 'done')
    const claimedOnly = new Set(evaluations.filter((e) => e.phase === 'claim').map((e) => e.slot))
    for (const d of done) claimedOnly.delete(d.slot)
    const doneSlots = done.map((d) => d.slot)
    assert.equal(new Set(doneSlots).size, doneSlots.length, 'no slot evaluated twice')

    // Windows join: each starts where the previous finished one ended, less the lag margin.
    const gaps: string[] = []
    for (let i = 1; i < done.length; i++) {
      const start = Number(done[i]!.window_start) + LAG_MARGIN_MS
      const prevEnd = Number(done[i - 1]!.window_end)
      if (start !== prevEnd) gaps.push(`slot ${done[i]!.slot}: starts ${start - prevEnd} ms off`)
    }
    assert.deepEqual(gaps, [], 'every finished window starts where the last one ended')
    // Every killed run had at least started an evaluation (each ran over a second boundary);
    // on a loaded machine some are killed before they finish one.
    assert.ok(
      done.length + claimedOnly.size >= KILLS,
      `${done.length} evaluations finished and ${claimedOnly.size} interrupted for ${KILLS} kills`,
    )

    // Notifications: the receiver's own record.
    const byId = new Map<string, Received[]>()
    for (const r of hook.received) {
      const id = r.body.transition.id as string
      byId.set(id, [...(byId.get(id) ?? []), r])
    }
    // A kill between a good POST and its record sends the transition again once the claim's
    // lease ends: HTTP gives no exactly-once, so each POST carries the transition id as its
    // idempotency-key and a repeat must be the same POST, which a receiver drops by that key.
    // What may never happen is a second id for one change of state (repeatedStates below).
    const redelivered = [...byId.values()].filter((rs) => rs.length > 1)
    const notSameRepeat = redelivered.filter((rs) =>
      rs.some(
        (r) =>
          r.headers['idempotency-key'] !== rs[0]!.body.transition.id ||
          JSON.stringify(r.body) !== JSON.stringify(rs[0]!.body),
      ),
    )
    const sequence = [...byId.values()]
      .map((rs) => rs[0]!.body)
      .sort((a, b) => Date.parse(a.transition.at) - Date.parse(b.transition.at))
    const repeatedStates = sequence.filter((b, i) => i > 0 && sequence[i - 1].status === b.status)
    const wrongValue = sequence.filter(
      (b) => valueAt(Date.parse(b.transition.at)) !== (b.status === 'firing' ? 1 : 0),
    )
    const transitions = storedTransitions()
    const undelivered = transitions.filter((t) => !byId.has(t.id))
    const figures = {
      seed: SEED,
      kills: KILLS,
      evaluations: done.length,
      interruptedEvaluations: claimedOnly.size,
      windowGaps: gaps.length,
      notifications: hook.received.length,
      transitions: transitions.length,
      redeliveredSameKey: redelivered.length,
      repeatedStates: repeatedStates.length,
      undelivered: undelivered.length,
      deliveredByCatchUpRun: left.length,
    }
    process.stdout.write(`${JSON.stringify(figures)}\n`)
    assert.equal(
      notSameRepeat.length,
      0,
      `seed ${SEED}: a transition POSTed again with another key or body`,
    )
    assert.deepEqual(
      repeatedStates.map((b) => `${b.status} at ${b.transition.at}`),
      [],
      `seed ${SEED}: a state announced twice in a row`,
    )
    assert.deepEqual(wrongValue, [], 'each transition agrees with the value at its time')
    assert.ok(sequence.length >= 2, `${sequence.length} transitions notified`)
    assert.deepEqual(
      undelivered.map((t) => t.id),
      [],
      'every stored transition was notified',
    )
  })
})
