// Decoded events (with their enrichment meta) → rows of the ebbflow tables as JSONEachRow, and
// one insert per table: the tests' own reference mapping and fixture writer. Production stores
// the collector's protobuf batches as they are (ClickHouse's Protobuf format, ingest.ts and
// batch-sql.ts); this older path written in TypeScript is kept here as an independent oracle to
// compare what the production path stored with, and to fill a store for tests of the readers.

import { eventWallNs, nsToEpochText } from '@ebbflow/common/event-time'
import type { CapturedEvent, DropDelta, EventMeta, TaskFields } from '@ebbflow/common/events/types'
import { META_COLUMNS, type Store, TABLES, type Table } from '@ebbflow/store'

/** Where a batch came from: turns boot-time timestamps into wall time and names the node. */
export interface RowContext {
  /** Wall-clock ns since the epoch minus CLOCK_BOOTTIME ns (the collector's WallClock). */
  offsetNs: bigint
  /** The node, when an event's meta does not name it. Default: ''. */
  node?: string
  /** The node's boot (EventBatch.bootId): with node and tgid it names one process. */
  bootId?: string
}

/** A drop count as the wire carries it: the kernel's reasons and the publisher's queue_full. */
export type StoredDrops = Omit<DropDelta, 'reason'> & { reason: string }
export type StorableEvent = CapturedEvent | StoredDrops

export type Row = Record<string, unknown>
export type RowsByTable = Record<Table, Row[]>

/** DateTime64(9) as JSONEachRow reads it exactly: "seconds.nanoseconds". */
export function wallTime(bootNs: number, offsetNs: bigint): string {
  return nsToEpochText(eventWallNs(offsetNs, bootNs))
}

function metaColumns(m: EventMeta | undefined, ctx: RowContext): Row {
  const row: Row = {}
  for (const c of META_COLUMNS) row[c.column] = m?.[c.field] ?? c.empty
  row.node = m?.node || ctx.node || ''
  row.boot_id = ctx.bootId ?? ''
  return row
}

function taskColumns(e: TaskFields): Row {
  return {
    cgroup_id: e.cgroupId,
    pid: e.pid,
    tgid: e.tgid,
    ppid: e.ppid,
    uid: e.uid,
    gid: e.gid,
    pidns_ino: e.pidnsIno,
    mntns_ino: e.mntnsIno,
    comm: e.comm,
  }
}

export function emptyRows(): RowsByTable {
  return {
    process_events: [],
    tcp_connections: [],
    traffic: [],
    syscall_counts: [],
    syscall_events: [],
    file_accesses: [],
    collector_stats: [],
  }
}

/** One row per event, grouped by table. Columns an event kind does not have take defaults. */
export function toRows(events: Iterable<StorableEvent>, ctx: RowContext): RowsByTable {
  return appendRows(emptyRows(), events, ctx)
}

/** Adds the rows of `events` to `out` (batches from several nodes into one insert); returns it. */
export function appendRows(
  out: RowsByTable,
  events: Iterable<StorableEvent>,
  ctx: RowContext,
): RowsByTable {
  for (const e of events) {
    const time = wallTime(e.bootNs, ctx.offsetNs)
    switch (e.kind) {
      case 'exec':
        out.process_events.push({
          time,
          kind: 'exec',
          ...metaColumns(e.meta, ctx),
          ...taskColumns(e),
          parent_comm: e.parentComm,
          filename: e.filename,
          args: e.args,
          args_total_bytes: e.argsTotalBytes,
          args_truncated: e.argsTruncated,
          filename_truncated: e.filenameTruncated,
          args_read_failed: e.argsReadFailed,
          seen_at_start: e.seenAtStart === true,
        })
        break
      case 'exit':
        out.process_events.push({
          time,
          kind: 'exit',
          ...metaColumns(e.meta, ctx),
          ...taskColumns(e),
          duration_ns: e.durationNs,
          duration_from_fork: e.durationFromFork,
          exit_code: e.exitCode,
          signal: e.signal,
          core_dumped: e.coreDumped,
        })
        break
      case 'fork':
        out.process_events.push({
          time,
          kind: 'fork',
          ...metaColumns(e.meta, ctx),
          ...taskColumns(e),
          child_pid: e.childPid,
          child_tgid: e.childTgid,
        })
        break
      case 'tcp':
        out.tcp_connections.push({
          time,
          event: e.tcp,
          role: e.role,
          ...metaColumns(e.meta, ctx),
          cgroup_id: e.cgroupId,
          sock_id: e.sockId,
          pid: e.pid,
          comm: e.comm,
          netns_ino: e.netnsIno,
          ip_family: e.family,
          saddr: e.saddr,
          daddr: e.daddr,
          sport: e.sport,
          dport: e.dport,
          duration_ns: e.durationNs,
          bytes_sent: e.bytesSent,
          bytes_received: e.bytesReceived,
        })
        break
      case 'traffic':
        out.traffic.push({
          time,
          interval_ns: e.intervalNs,
          ...metaColumns(e.meta, ctx),
          cgroup_id: e.cgroupId,
          direction: e.direction,
          protocol: e.protocol,
          ip_family: e.family,
          remote_addr: e.remoteAddr,
          remote_port: e.remotePort,
          local_port: e.localPort,
          packets: e.packets,
          bytes: e.bytes,
        })
        break
      case 'syscall_count':
        out.syscall_counts.push({
          time,
          interval_ns: e.intervalNs,
          ...metaColumns(e.meta, ctx),
          cgroup_id: e.cgroupId,
          syscall_nr: e.syscallNr,
          syscall: e.syscall,
          count: e.count,
        })
        break
      case 'syscall':
        out.syscall_events.push({
          time,
          ...metaColumns(e.meta, ctx),
          ...taskColumns(e),
          syscall_nr: e.syscallNr,
          syscall: e.syscall,
          args: e.args.map((a) => a.toString()),
          string_args: e.strings.map((s) => s.arg),
          string_values: e.strings.map((s) => s.value),
        })
        break
      case 'file':
        out.file_accesses.push({
          time,
          ...metaColumns(e.meta, ctx),
          ...taskColumns(e),
          path: e.path,
          access: e.access,
          op: e.op,
          directory: e.directory,
          path_truncated: e.pathTruncated,
          count: e.count,
          repeat: e.repeat,
        })
        break
      case 'drops':
        out.collector_stats.push({
          time,
          node: e.meta?.node || ctx.node || '',
          boot_id: ctx.bootId ?? '',
          metric: 'drops',
          family: e.family,
          reason: e.reason,
          value: e.count,
        })
        break
    }
  }
  return out
}

export interface InsertEventsOptions {
  /**
   * The batch's id: each table's insert uses `${dedupToken}:${table}` as its deduplication
   * token, so the same batch sent again adds no rows to any table.
   */
  dedupToken?: string
}

/** Writes events to their tables (one insert per table that has rows); returns rows per table. */
export async function insertEvents(
  store: Store,
  events: Iterable<StorableEvent>,
  ctx: RowContext,
  options: InsertEventsOptions = {},
): Promise<Record<Table, number>> {
  return insertRows(store, toRows(events, ctx), options)
}

/** Writes rows already grouped by table: one insert per table that has rows. */
export async function insertRows(
  store: Store,
  rows: RowsByTable,
  options: InsertEventsOptions = {},
): Promise<Record<Table, number>> {
  const counts = {} as Record<Table, number>
  for (const table of TABLES) {
    const tableRows = rows[table]
    counts[table] = tableRows.length
    if (tableRows.length === 0) continue
    await store.insert(
      `ebbflow.${table}`,
      tableRows,
      options.dedupToken === undefined ? {} : { dedupToken: `${options.dedupToken}:${table}` },
    )
  }
  return counts
}
