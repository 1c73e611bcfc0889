// Event time: the one place CLOCK_BOOTTIME stamps become wall-clock time and wall-clock time
// becomes text. The kernel stamps records with CLOCK_BOOTTIME (monotonic across suspend, not
// stepped by NTP); the collector takes one offset to the epoch per process (collector clock.ts)
// and every output it makes of an event (the JSON lines, the wire record, `up`'s live tail)
// adds that offset here, so one event has one time everywhere. Past the collector an event
// carries that wall time only (`timeNs` of a decoded event, the stored `time`): `bootNs` means
// the node's boot clock and exists nowhere else.
// Events keep the number and not a bigint wall time stamped at capture: a bigint per event cost
// 128 ns more per event to make and write (bench/RESULTS.md, issue 18, "one time"), 6 % of an
// event's budget at the collector's throughput target.

/** Wall-clock ns since the epoch of an event stamped `bootNs` under a clock whose offset is
 * `offsetNs` (wall ns − boot ns). */
export function eventWallNs(offsetNs: bigint, bootNs: number): bigint {
  return offsetNs + BigInt(Math.round(bootNs))
}

/** The wall offset now: `Date.now()` against a CLOCK_BOOTTIME reading taken at the same time. */
export function wallOffsetNs(bootNowNs: number): bigint {
  return BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(bootNowNs))
}

/** Wall-clock ns since the epoch → ClickHouse DateTime64(9) text in UTC,
 * "YYYY-MM-DD hh:mm:ss.nnnnnnnnn" (the store's and the API's inner form). */
export function nsToTime(ns: bigint): string {
  const seconds = ns / 1_000_000_000n
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0')
  const iso = new Date(Number(seconds) * 1000).toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac}`
}

/** Wall-clock ns since the epoch → "seconds.nanoseconds": the text ClickHouse reads into a
 * DateTime64(9) exactly, whatever the server's time zone (the ingester's bookkeeping rows). */
export function nsToEpochText(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`
}

/** Wall-clock ns since the epoch → RFC 3339 in UTC with nine fraction digits (what the API
 * answers and `collect --output json` prints). */
export function formatEventTime(ns: bigint): string {
  return `${nsToTime(ns).replace(' ', 'T')}Z`
}
