// What a collector can send, checked event by event before anything is stored. Protobuf takes
// almost any bytes as some message and any number in range of its wire type, so a batch that
// decodes can still say an exit had code -2^31 or lasted 2^64-1 ns. The kernel bounds each
// field; a value outside those bounds did not come from a collector, and its record goes to the
// dead letters with the reason instead of becoming rows.
import type { DecodedBatch } from '@ebbflow/common/wire'

/** PID_MAX_LIMIT (include/linux/threads.h): no pid or tgid is larger, and 0 is the idle task. */
const PID_MAX = 4_194_304
/** An exit status is the low byte of what the process passed (wait(2)). */
const EXIT_CODE_MAX = 255
/** SIGRTMAX on Linux. */
const SIGNAL_MAX = 64
/** Longer than any process or connection lives, shorter than any garbage: 100 years. */
const DURATION_MAX_NS = 100 * 365 * 24 * 3600 * 1e9
/** A sequence counts batches from 0: past 2^53 it cannot be counted exactly in JavaScript, and
 * no collector sends that many. */
const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER
/** A uid or gid is 32 bits, and (uid_t)-1 means "none": never a process's id. */
const ID_MAX = 0xfffffffe

/** Problems listed per record, at most (the count says how many more). */
const LISTED = 5

function inRange(v: number, min: number, max: number): boolean {
  return Number.isFinite(v) && v >= min && v <= max
}

/** The record's problems, none when it may be stored. */
export function validateBatch(b: DecodedBatch): string[] {
  const problems: string[] = []
  let more = 0
  const bad = (what: string) => {
    if (problems.length < LISTED) problems.push(what)
    else more++
  }
  if (!inRange(b.sequence, 0, SEQUENCE_MAX)) bad(`sequence ${b.sequence} out of range`)
  const events =
    b.exec.length +
    b.exit.length +
    b.fork.length +
    b.tcp.length +
    b.traffic.length +
    b.syscall.length +
    b.syscallCount.length +
    b.drops.length
  // Collectors never publish an empty batch; another message type read as a batch is one.
  if (events === 0) bad('no events')
  const task = (
    kind: string,
    i: number,
    e: { pid: number; tgid: number; uid: number; gid: number },
  ) => {
    if (!inRange(e.pid, 1, PID_MAX)) bad(`${kind}[${i}]: pid ${e.pid} out of range 1..${PID_MAX}`)
    if (!inRange(e.tgid, 1, PID_MAX))
      bad(`${kind}[${i}]: tgid ${e.tgid} out of range 1..${PID_MAX}`)
    if (!inRange(e.uid, 0, ID_MAX)) bad(`${kind}[${i}]: uid ${e.uid} out of range`)
    if (!inRange(e.gid, 0, ID_MAX)) bad(`${kind}[${i}]: gid ${e.gid} out of range`)
  }
  b.exec.forEach((e, i) => {
    task('exec', i, e)
    if (e.filename === '' && e.args.length === 0) bad(`exec[${i}]: neither filename nor args`)
  })
  b.exit.forEach((e, i) => {
    task('exit', i, e)
    if (!inRange(e.exitCode, 0, EXIT_CODE_MAX))
      bad(`exit[${i}]: exit code ${e.exitCode} out of range 0..${EXIT_CODE_MAX}`)
    if (!inRange(e.signal, 0, SIGNAL_MAX))
      bad(`exit[${i}]: signal ${e.signal} out of range 0..${SIGNAL_MAX}`)
    if (!inRange(e.durationNs, 0, DURATION_MAX_NS))
      bad(`exit[${i}]: duration ${e.durationNs} ns out of range`)
  })
  b.fork.forEach((e, i) => {
    task('fork', i, e)
    if (!inRange(e.childPid, 1, PID_MAX)) bad(`fork[${i}]: child pid ${e.childPid} out of range`)
    if (!inRange(e.childTgid, 1, PID_MAX)) bad(`fork[${i}]: child tgid ${e.childTgid} out of range`)
  })
  b.tcp.forEach((e, i) => {
    // A passive socket's pid is 0 (softirq does not know the process).
    if (!inRange(e.pid, 0, PID_MAX)) bad(`tcp[${i}]: pid ${e.pid} out of range`)
    if (!inRange(e.sport, 0, 65_535) || !inRange(e.dport, 0, 65_535))
      bad(`tcp[${i}]: port out of range`)
    if (!inRange(e.durationNs, 0, DURATION_MAX_NS))
      bad(`tcp[${i}]: duration ${e.durationNs} ns out of range`)
  })
  for (const [i, e] of b.syscall.entries()) task('syscall', i, e)
  // proto/README.md: a reader treats an enum value it does not know as unspecified, and no
  // column has an "unspecified": the record waits in the dead letters for a reader that knows
  // it, instead of being stored under a name it never had.
  for (const u of b.unknownEnums) bad(`${u}: not a value this reader knows`)
  if (more > 0) problems.push(`and ${more} more`)
  return problems
}
