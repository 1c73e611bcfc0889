import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatTime, nsToTime, parseTime, timeToNs } from '../../src/time.ts'

describe('parseTime', () => {
  const cases: [string, string | undefined][] = [
    ['2024-05-01T12:00:00Z', '2024-05-01 12:00:00.000000000'],
    ['2024-05-01T12:00:00.123456789Z', '2024-05-01 12:00:00.123456789'],
    ['2024-05-01T12:00:00.5+02:00', '2024-05-01 10:00:00.500000000'],
    ['2024-05-01', undefined],
    ['2024-13-01T00:00:00Z', undefined],
    ["2024-05-01T12:00:00Z' OR 1=1", undefined],
    ['2024-05-01T12:00:00.1234567890Z', undefined],
  ]
  for (const [input, want] of cases)
    it(input, () => {
      assert.equal(parseTime(input), want)
    })

  it('round-trips nanoseconds', () => {
    const t = '2024-05-01 12:00:00.123456789'
    assert.equal(nsToTime(timeToNs(t)), t)
    assert.equal(formatTime(t), '2024-05-01T12:00:00.123456789Z')
  })
})
