// One event, one time: the JSON line `collect` prints and the wire record a publisher sends
// carry the same time for the same event (the collector's one clock), and that time is when
// the test read the kernel's clock.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BatchWriter } from '@ebbflow/common/batch-writer'
import { formatEventTime } from '@ebbflow/common/event-time'
import { decodeEventBatch, writeEvent } from '@ebbflow/common/wire'
import { bootTimeNs } from '@ebbflow/native'
import { syntheticSyscall } from '../../../../tests/support/synthetic-syscall.ts'
import { collectorClock } from '../../src/clock.ts'
import { formatJsonLines } from '../../src/json-sink.ts'

describe('event time', () => {
  it('is the same text in the JSON line and the wire record, and is now', () => {
    const beforeMs = Date.now()
    const bootNs = bootTimeNs()
    const afterMs = Date.now()
    const event = syntheticSyscall({ bootNs })
    const line = JSON.parse(formatJsonLines([event], collectorClock())) as { time: string }
    const w = new BatchWriter(64)
    writeEvent(w, event, collectorClock())
    // Read back as the API's live tail does: the wall time sent, without the sender's clock.
    const batch = decodeEventBatch(w.finish())
    const wire = formatEventTime(batch.syscall[0]!.timeNs)
    assert.equal(wire, line.time)
    assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    const ms = Date.parse(line.time)
    // The clock's offset was taken in this process within a few ms of the reading.
    assert.ok(ms >= beforeMs - 5 && ms <= afterMs + 5, `${line.time} vs ${beforeMs}..${afterMs}`)
  })
})
