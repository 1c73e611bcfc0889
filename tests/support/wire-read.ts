// Decoded events back on a collector's clock, for tests that compare what a publisher sent
// with the events it was given, or hand decoded events to a publisher again. The wire carries
// wall time; `bootNs` only means something against the clock that stamped it, which the test
// knows (it made the publisher) and a reader in production does not.
import type { CapturedEvent } from '@ebbflow/common'
import { type Decoded, WallClock, type WireDrops } from '@ebbflow/common/wire'

/** The event with `bootNs` on `clock` in place of its wall time (an untimed one at 0). */
export function onClock(e: Decoded<CapturedEvent | WireDrops>, clock: WallClock): CapturedEvent {
  const { timeNs, ...rest } = e
  return { ...rest, bootNs: timeNs === 0n ? 0 : Number(timeNs - clock.offsetNs) } as CapturedEvent
}

/** A clock on which every event of the list has a small exact `bootNs` (the earliest at 0). */
export function clockOf(events: readonly { timeNs: bigint }[]): WallClock {
  let min: bigint | undefined
  for (const e of events)
    if (e.timeNs !== 0n && (min === undefined || e.timeNs < min)) min = e.timeNs
  return new WallClock(min ?? 0n)
}
