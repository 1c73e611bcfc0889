// The collector's one wall clock: the offset from CLOCK_BOOTTIME (the records' clock) to the
// epoch, taken once per process. The JSON lines and the publishers' wire records both use it,
// so an event printed and the same event published carry the same time, and a later step of
// the system clock does not reorder events already stamped.
import { WallClock } from '@ebbflow/common/wire'
import { bootTimeNs } from '@ebbflow/native'

let clock: WallClock | undefined

export function collectorClock(): WallClock {
  clock ??= WallClock.fromBootTime(bootTimeNs())
  return clock
}
