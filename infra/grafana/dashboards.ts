// ebbflow's Grafana dashboards, written once here and generated into JSON:
//   node infra/grafana/dashboards.ts          (npm run gen:dashboards)
// writes infra/grafana/dashboards/*.json (provisioned by docker-compose.yml) and the
// Kubernetes ConfigMap infra/k8s/grafana-dashboards.yaml. A test fails when the committed
// files differ from what this prints, and runs every panel's SQL against chDB.
//
// The SQL is the ClickHouse plugin's (grafana-clickhouse-datasource): `editorType: "sql"`,
// `rawSql` with its macros ($__timeFilter, $__timeInterval, $__interval_s, $__conditionalAll…)
// and `format` 0 (time series) or 1 (table). Per-minute rollups (migration 0002) serve every
// panel they can; the raw tables serve what the rollups do not keep (connections, durations,
// revisions, sessions' commands).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Dashboard, Panel, VariableModel } from '@grafana/schema'

/** The provisioned datasource's uid (provisioning/datasources/clickhouse.yaml). */
export const DATASOURCE_UID = 'ebbflow-clickhouse'
export const PLUGIN = 'grafana-clickhouse-datasource'
/** Grafana 12's dashboard schema. */
export const SCHEMA_VERSION = 41

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not JavaScript's
const ds = { type: PLUGIN, uid: '${datasource}' }

export const FORMAT = { timeSeries: 0, table: 1 } as const

// Filters on the template variables: `1=1` when All (or nothing) is selected.
const NS = '$__conditionalAll(namespace IN ($namespace), $namespace)'
const WL = '$__conditionalAll(workload_name IN ($workload), $workload)'
const POD = '$__conditionalAll(pod IN ($pod), $pod)'
const FN = '$__conditionalAll(function IN ($function), $function)'

/** Rollup rows are per minute: a bucket is never narrower. */
const BUCKET_S = 'greatest($__interval_s, 60)'
const MINUTE_BUCKET = `toStartOfInterval(minute, toIntervalSecond(${BUCKET_S}))`

/** Who a row is about, most specific name first (a host without pods has units and comms). */
const WHO =
  "multiIf(workload_name != '', concat(namespace, '/', workload_name), pod != '', concat(namespace, '/', pod), systemd_unit != '', systemd_unit, comm)"
/** IPv4 peers back in dotted form (stored IPv4-mapped in IPv6 columns). */
const PEER = (col: string) => `replaceRegexpOne(IPv6NumToString(${col}), '^::ffff:', '')`

interface PanelSpec {
  title: string
  description: string
  type: 'timeseries' | 'table' | 'nodeGraph' | 'stat' | 'barchart'
  w: number
  h: number
  unit?: string
  targets: { refId?: string; sql: string; format: 0 | 1 }[]
  links?: { title: string; url: string }[]
}

function variables(extra: VariableModel[] = []): VariableModel[] {
  const query = (name: string, label: string, sql: string): VariableModel => ({
    name,
    label,
    type: 'query',
    datasource: ds,
    query: { editorType: 'sql', rawSql: sql } as unknown as string,
    refresh: 2,
    multi: true,
    includeAll: true,
    current: { text: ['All'], value: ['$__all'] },
    options: [],
    sort: 1,
    hide: 0,
  })
  return [
    {
      name: 'datasource',
      label: 'Datasource',
      type: 'datasource',
      query: PLUGIN,
      current: { text: 'ClickHouse (ebbflow)', value: DATASOURCE_UID },
      options: [],
      refresh: 1,
      hide: 0,
    },
    query(
      'namespace',
      'Namespace',
      'SELECT DISTINCT namespace FROM ebbflow.execs_1m WHERE $__timeFilter(minute) ORDER BY namespace',
    ),
    query(
      'workload',
      'Workload',
      `SELECT DISTINCT workload_name FROM ebbflow.execs_1m WHERE $__timeFilter(minute) AND ${NS} ORDER BY workload_name`,
    ),
    query(
      'pod',
      'Pod',
      `SELECT DISTINCT pod FROM ebbflow.syscalls_1m WHERE $__timeFilter(minute) AND ${NS} AND ${WL} ORDER BY pod`,
    ),
    query(
      'function',
      'Function',
      `SELECT DISTINCT function FROM ebbflow.execs_1m WHERE $__timeFilter(minute) AND function != '' AND ${NS} ORDER BY function`,
    ),
    ...extra,
  ]
}

function dashboard(
  uid: string,
  title: string,
  description: string,
  specs: PanelSpec[],
  extraVariables: VariableModel[] = [],
): Dashboard {
  let x = 0
  let y = 0
  let rowHeight = 0
  const panels: Panel[] = specs.map((spec, i) => {
    if (x + spec.w > 24) {
      x = 0
      y += rowHeight
      rowHeight = 0
    }
    const gridPos = { x, y, w: spec.w, h: spec.h }
    x += spec.w
    rowHeight = Math.max(rowHeight, spec.h)
    const panel: Panel = {
      id: i + 1,
      type: spec.type,
      title: spec.title,
      description: spec.description,
      gridPos,
      datasource: ds,
      targets: spec.targets.map((t, j) => ({
        refId: t.refId ?? String.fromCharCode(65 + j),
        datasource: ds,
        editorType: 'sql',
        queryType: t.format === FORMAT.timeSeries ? 'timeseries' : 'table',
        format: t.format,
        rawSql: t.sql,
      })),
      fieldConfig: {
        defaults: {
          ...(spec.unit ? { unit: spec.unit } : {}),
          ...(spec.links ? { links: spec.links } : {}),
        },
        overrides: [],
      },
      options: {},
    }
    return panel
  })
  return {
    uid,
    title,
    description,
    tags: ['ebbflow'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: SCHEMA_VERSION,
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    refresh: '30s',
    version: 1,
    links: [
      {
        title: 'ebbflow',
        type: 'dashboards',
        tags: ['ebbflow'],
        asDropdown: true,
        includeVars: true,
        keepTime: true,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
    annotations: { list: [] },
    templating: { list: variables(extraVariables) },
    panels,
  }
}

const clusterOverview = dashboard(
  'ebbflow-cluster-overview',
  'ebbflow / Cluster overview',
  'Processes started, connections opened and bytes moved across the cluster, and the health of the pipeline itself.',
  [
    {
      title: 'Execs per second',
      description: 'Processes started (execve), from the per-minute rollup execs_1m.',
      type: 'timeseries',
      w: 8,
      h: 8,
      unit: 'ops',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT ${MINUTE_BUCKET} AS time, sum(execs) / ${BUCKET_S} AS execs_per_s
FROM ebbflow.execs_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL}
GROUP BY time ORDER BY time`,
        },
      ],
    },
    {
      title: 'Connections per second',
      description: 'TCP connections opened (connect) and accepted (accept).',
      type: 'timeseries',
      w: 8,
      h: 8,
      unit: 'ops',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT $__timeInterval(time) AS time, event, count() / $__interval_s AS per_s
FROM ebbflow.tcp_connections
WHERE $__timeFilter(time) AND event IN ('connect', 'accept') AND ${NS} AND ${WL} AND ${POD}
GROUP BY time, event ORDER BY time`,
        },
      ],
    },
    {
      title: 'Traffic by namespace',
      description: 'Bytes per second in and out of pods, per namespace (traffic_1m).',
      type: 'timeseries',
      w: 8,
      h: 8,
      unit: 'Bps',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT ${MINUTE_BUCKET} AS time, if(namespace = '', '(host)', namespace) AS ns, sum(bytes) / ${BUCKET_S} AS bytes_per_s
FROM ebbflow.traffic_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
GROUP BY time, ns ORDER BY time`,
        },
      ],
    },
    {
      title: 'Top workloads by bytes',
      description: 'The 20 workloads that moved the most bytes in the time range.',
      type: 'table',
      w: 12,
      h: 9,
      unit: 'bytes',
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT namespace, workload_kind, workload_name,
  sumIf(bytes, direction = 'ingress') AS bytes_in, sumIf(bytes, direction = 'egress') AS bytes_out,
  sum(bytes) AS total
FROM ebbflow.traffic_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
GROUP BY namespace, workload_kind, workload_name
ORDER BY total DESC LIMIT 20`,
        },
      ],
    },
    {
      title: 'Collector drops per node',
      description:
        'Events the collectors lost, per node, family and reason (ring buffer full, queue full…). Flat at zero is healthy.',
      type: 'timeseries',
      w: 6,
      h: 9,
      unit: 'short',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT $__timeInterval(time) AS time, concat(node, ' ', family, ' ', reason) AS series, sum(value) AS drops
FROM ebbflow.collector_stats
WHERE $__timeFilter(time) AND metric = 'drops'
GROUP BY time, series ORDER BY time`,
        },
      ],
    },
    {
      title: 'Ingest lag per node',
      description:
        "How far behind its newest event the ingester stored each node's batches (worst per bucket).",
      type: 'timeseries',
      w: 6,
      h: 9,
      unit: 'ms',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT $__timeInterval(time) AS time, node, max(value) AS lag_ms
FROM ebbflow.collector_stats
WHERE $__timeFilter(time) AND metric = 'ingest_lag_ms'
GROUP BY time, node ORDER BY time`,
        },
      ],
    },
  ],
)

const podNetwork = dashboard(
  'ebbflow-pod-network',
  'ebbflow / Pod network',
  "Per-pod network statistics from cgroup_skb counters (cgnet's view) and the TCP connections between workloads.",
  [
    {
      title: 'Bytes per pod',
      description: 'Bytes per second in (ingress) and out (egress) of each pod.',
      type: 'timeseries',
      w: 12,
      h: 8,
      unit: 'Bps',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT ${MINUTE_BUCKET} AS time, concat(if(pod = '', '(host)', pod), ' ', toString(direction)) AS series, sum(bytes) / ${BUCKET_S} AS bytes_per_s
FROM ebbflow.traffic_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
GROUP BY time, series ORDER BY time`,
        },
      ],
    },
    {
      title: 'Packets per pod',
      description: 'Packets per second in and out of each pod.',
      type: 'timeseries',
      w: 12,
      h: 8,
      unit: 'pps',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT ${MINUTE_BUCKET} AS time, concat(if(pod = '', '(host)', pod), ' ', toString(direction)) AS series, sum(packets) / ${BUCKET_S} AS packets_per_s
FROM ebbflow.traffic_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
GROUP BY time, series ORDER BY time`,
        },
      ],
    },
    {
      title: 'Service map',
      description:
        'Who connects to whom: an edge per client and server (a pod or workload where the accepting side is known, the address and port otherwise), with connections and bytes.',
      type: 'nodeGraph',
      w: 24,
      h: 12,
      targets: [
        {
          refId: 'nodes',
          format: FORMAT.table,
          sql: serviceMap(
            `SELECT id, id AS title, sum(connections) AS mainstat, sum(bytes) AS secondarystat
FROM (SELECT source AS id, connections, bytes FROM edges UNION ALL SELECT target AS id, connections, bytes FROM edges)
GROUP BY id ORDER BY id`,
          ),
        },
        {
          refId: 'edges',
          format: FORMAT.table,
          sql: serviceMap(
            `SELECT concat(source, ' -> ', target) AS id, source, target, connections AS mainstat, bytes AS secondarystat
FROM edges ORDER BY id`,
          ),
        },
      ],
    },
    {
      title: 'Traffic by peer and port',
      description: 'Bytes and packets per pod, direction, remote address and ports.',
      type: 'table',
      w: 24,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT namespace, pod, toString(direction) AS direction, ${PEER('remote_addr')} AS peer, remote_port, local_port,
  sum(bytes) AS bytes, sum(packets) AS packets
FROM ebbflow.traffic_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
GROUP BY namespace, pod, direction, peer, remote_port, local_port
ORDER BY bytes DESC LIMIT 200`,
        },
      ],
    },
  ],
)

/** The service map's edges as a CTE, then `select` over them. */
function serviceMap(select: string): string {
  return `WITH
servers AS (
  SELECT saddr, sport, any(${WHO}) AS server
  FROM ebbflow.tcp_connections
  WHERE $__timeFilter(time) AND event = 'accept'
  GROUP BY saddr, sport
),
edges AS (
  SELECT c.client AS source,
    if(s.server != '', s.server, concat(${PEER('c.daddr')}, ':', toString(c.dport))) AS target,
    sum(c.opened) AS connections, sum(c.moved) AS bytes
  FROM (
    SELECT ${WHO} AS client, daddr, dport, countIf(event = 'connect') AS opened,
      sumIf(bytes_sent + bytes_received, event = 'close') AS moved
    FROM ebbflow.tcp_connections
    WHERE $__timeFilter(time) AND role = 'active' AND ${NS} AND ${WL} AND ${POD}
    GROUP BY client, daddr, dport
  ) AS c
  LEFT JOIN servers AS s ON s.saddr = c.daddr AND s.sport = c.dport
  GROUP BY source, target
)
${select}`
}

const session: VariableModel = {
  name: 'session',
  label: 'Session',
  type: 'textbox',
  query: '',
  current: { text: '', value: '' },
  options: [],
  hide: 0,
}

const execAudit = dashboard(
  'ebbflow-exec-audit',
  'ebbflow / Exec audit',
  'kubectl exec sessions and what was run in them, and interactive shells started in containers.',
  [
    {
      title: 'Exec sessions',
      description:
        'Each `kubectl exec` session: where, when, who (uids), how many commands (failed) and the first one. Click a session for its commands in order.',
      type: 'table',
      w: 24,
      h: 10,
      links: [
        {
          title: 'Commands of this session',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's data link variables
          url: '/d/ebbflow-exec-audit?var-session=${__data.fields.session}&${__url_time_range}',
        },
      ],
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT session, namespace, pod, container, node, min(started) AS started_at, max(last_seen) AS last_seen_at,
  sum(commands) AS commands, sum(failed) AS failed,
  arrayStringConcat(arraySort(groupUniqArrayArray(uids)), ',') AS uids,
  argMinMerge(first_command) AS first_command
FROM ebbflow.exec_sessions
WHERE $__dateFilter(day) AND ${NS} AND ${POD}
GROUP BY session, namespace, pod, container, node
HAVING last_seen_at >= $__fromTime AND started_at <= $__toTime
ORDER BY started_at DESC LIMIT 500`,
        },
      ],
    },
    {
      title: 'Commands of session $session',
      description:
        'The commands of the session chosen above (or typed in the Session box), in order, with their exits.',
      type: 'table',
      w: 24,
      h: 12,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT time, namespace, pod, container, uid, pid, ppid, parent_comm, filename,
  arrayStringConcat(args, ' ') AS command
FROM ebbflow.process_events
WHERE session = \${session:sqlstring} AND kind = 'exec'
ORDER BY time LIMIT 10000`,
        },
      ],
    },
    {
      title: 'Interactive shells in containers',
      description:
        'Shells started in a container without a script to run (no arguments, or -i): someone typing, or a reverse shell.',
      type: 'table',
      w: 24,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT time, namespace, pod, container, workload_name, uid, pid, parent_comm, filename,
  arrayStringConcat(args, ' ') AS command, session
FROM ebbflow.process_events
WHERE $__timeFilter(time) AND kind = 'exec' AND container != ''
  AND comm IN ('sh', 'bash', 'ash', 'dash', 'zsh', 'ksh', 'fish', 'busybox')
  AND (length(args) <= 1 OR has(args, '-i'))
  AND ${NS} AND ${WL} AND ${POD}
ORDER BY time DESC LIMIT 500`,
        },
      ],
    },
  ],
  [session],
)

const syscalls = dashboard(
  'ebbflow-syscalls',
  'ebbflow / Syscalls',
  'System calls per container from the in-kernel counters: the busiest, the rarest, and those a workload never made before.',
  [
    {
      title: 'Syscalls per second (top 10)',
      description: 'The ten busiest system calls over the range, per second.',
      type: 'timeseries',
      w: 24,
      h: 8,
      unit: 'ops',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT ${MINUTE_BUCKET} AS time, syscall, sum(count) / ${BUCKET_S} AS per_s
FROM ebbflow.syscalls_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
  AND syscall IN (
    SELECT syscall FROM ebbflow.syscalls_1m
    WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
    GROUP BY syscall ORDER BY sum(count) DESC LIMIT 10)
GROUP BY time, syscall ORDER BY time`,
        },
      ],
    },
    {
      title: 'Top syscalls per container',
      description: 'Each container’s system calls, most frequent first.',
      type: 'table',
      w: 12,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT namespace, pod, container, syscall, sum(count) AS calls
FROM ebbflow.syscalls_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
GROUP BY namespace, pod, container, syscall
ORDER BY calls DESC LIMIT 100`,
        },
      ],
    },
    {
      title: 'Rare syscalls per container',
      description:
        'System calls a container made in at most 3 minutes of the range, fewest first: the unusual ones.',
      type: 'table',
      w: 12,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT namespace, pod, container, syscall, sum(count) AS calls, uniqExact(minute) AS minutes, max(minute) AS last_seen
FROM ebbflow.syscalls_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
GROUP BY namespace, pod, container, syscall
HAVING minutes <= 3
ORDER BY calls ASC, last_seen DESC LIMIT 100`,
        },
      ],
    },
    {
      title: 'Syscalls outside the learned profile',
      description:
        "System calls a workload's containers made in the range but never in the 7 days before it: the workload's learned profile, as seccomp-bpf would enforce it.",
      type: 'table',
      w: 24,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT namespace, workload_kind, workload_name, container, syscall, sum(count) AS calls, min(minute) AS first_seen
FROM ebbflow.syscalls_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD}
  AND (namespace, workload_kind, workload_name, container, syscall) NOT IN (
    SELECT namespace, workload_kind, workload_name, container, syscall
    FROM ebbflow.syscalls_1m
    WHERE minute < $__fromTime AND minute >= $__fromTime - INTERVAL 7 DAY AND ${NS} AND ${WL})
GROUP BY namespace, workload_kind, workload_name, container, syscall
ORDER BY first_seen DESC LIMIT 200`,
        },
      ],
    },
  ],
)

const functions = dashboard(
  'ebbflow-functions',
  'ebbflow / Serverless functions',
  'Function pods (Knative, OpenFaaS, Fission, Kubeless): invocations as processes, their durations, and traffic per function and revision.',
  [
    {
      title: 'Invocations per function',
      description:
        'Processes started per second in each function’s pods (a process per call for fork-per-request runtimes).',
      type: 'timeseries',
      w: 12,
      h: 8,
      unit: 'ops',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT ${MINUTE_BUCKET} AS time, function, sum(execs) / ${BUCKET_S} AS per_s
FROM ebbflow.execs_1m
WHERE $__timeFilter(minute) AND function != '' AND ${NS} AND ${WL} AND ${FN}
GROUP BY time, function ORDER BY time`,
        },
      ],
    },
    {
      title: 'Traffic per function',
      description: 'Bytes per second in and out of each function’s pods.',
      type: 'timeseries',
      w: 12,
      h: 8,
      unit: 'Bps',
      targets: [
        {
          format: FORMAT.timeSeries,
          sql: `SELECT ${MINUTE_BUCKET} AS time, concat(function, ' ', toString(direction)) AS series, sum(bytes) / ${BUCKET_S} AS bytes_per_s
FROM ebbflow.traffic_1m
WHERE $__timeFilter(minute) AND function != '' AND ${NS} AND ${WL} AND ${FN}
GROUP BY time, series ORDER BY time`,
        },
      ],
    },
    {
      title: 'Durations per function and revision',
      description: 'How long the functions’ processes ran, from exec to exit, per revision.',
      type: 'table',
      w: 12,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT function, function_revision AS revision, count() AS processes, countIf(exit_code != 0 OR signal != 0) AS failed,
  round(quantile(0.5)(duration_ns) / 1e6, 3) AS p50_ms, round(quantile(0.95)(duration_ns) / 1e6, 3) AS p95_ms,
  round(max(duration_ns) / 1e6, 3) AS max_ms
FROM ebbflow.process_events
WHERE $__timeFilter(time) AND kind = 'exit' AND function != '' AND ${NS} AND ${WL} AND ${POD} AND ${FN}
GROUP BY function, revision ORDER BY function, revision`,
        },
      ],
    },
    {
      title: 'Traffic per function and revision',
      description: 'Bytes and packets in and out per function revision.',
      type: 'table',
      w: 12,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT function, function_revision AS revision,
  sumIf(bytes, direction = 'ingress') AS bytes_in, sumIf(bytes, direction = 'egress') AS bytes_out,
  sum(packets) AS packets
FROM ebbflow.traffic
WHERE $__timeFilter(time) AND function != '' AND ${NS} AND ${WL} AND ${POD} AND ${FN}
GROUP BY function, revision ORDER BY function, revision`,
        },
      ],
    },
  ],
)

const files = dashboard(
  'ebbflow-files',
  'ebbflow / Files',
  'What each workload opens, execs, creates and removes (the file family, `--families …,file`), and writes under system folders.',
  [
    {
      title: 'Files per workload',
      description:
        'Paths each workload touched, by kind of access, most used first (accesses counted in the kernel included).',
      type: 'table',
      w: 24,
      h: 10,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT namespace, workload_kind, workload_name, path, toString(access) AS access, sum(count) AS accesses, min(minute) AS first_seen, max(minute) AS last_seen
FROM ebbflow.file_accesses_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD} AND ${FN}
GROUP BY namespace, workload_kind, workload_name, path, access
ORDER BY accesses DESC LIMIT 500`,
        },
      ],
    },
    {
      title: 'Writes under /etc, /usr and /bin',
      description:
        'Containers writing, creating or removing files in the image’s system folders (the SystemPathWrittenInContainer alert).',
      type: 'table',
      w: 24,
      h: 8,
      targets: [
        {
          format: FORMAT.table,
          sql: `SELECT namespace, pod, container, path, toString(access) AS access, sum(count) AS accesses, max(minute) AS last_seen
FROM ebbflow.file_accesses_1m
WHERE $__timeFilter(minute) AND ${NS} AND ${WL} AND ${POD} AND ${FN}
  AND container != '' AND access IN ('write', 'truncate', 'create', 'remove') AND match(path, '^/(etc|usr|bin)(/|$)')
GROUP BY namespace, pod, container, path, access
ORDER BY last_seen DESC LIMIT 200`,
        },
      ],
    },
  ],
)

/** File name → dashboard. */
export const DASHBOARDS: Record<string, Dashboard> = {
  'cluster-overview.json': clusterOverview,
  'pod-network.json': podNetwork,
  'exec-audit.json': execAudit,
  'syscalls.json': syscalls,
  'functions.json': functions,
  'files.json': files,
}

export function dashboardJson(d: Dashboard): string {
  return `${JSON.stringify(d, null, 2)}\n`
}

/** The ConfigMap Grafana's dashboard sidecar (label grafana_dashboard) loads in a cluster. */
export function configMapYaml(): string {
  const lines = [
    '# Generated by infra/grafana/dashboards.ts (npm run gen:dashboards); do not edit.',
    "# The dashboards for Grafana's sidecar (kube-prometheus-stack, the Grafana Helm chart):",
    '# it loads every ConfigMap labelled grafana_dashboard (in every namespace when its',
    '# searchNamespace is ALL).',
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    '  name: ebbflow-grafana-dashboards',
    '  namespace: ebbflow',
    '  labels:',
    '    grafana_dashboard: "1"',
    'data:',
  ]
  for (const [file, d] of Object.entries(DASHBOARDS)) {
    lines.push(`  ${file}: |`)
    for (const line of dashboardJson(d).trimEnd().split('\n')) lines.push(`    ${line}`)
  }
  return `${lines.join('\n')}\n`
}

export const OUTPUT = {
  dir: join(import.meta.dirname, 'dashboards'),
  configMap: join(import.meta.dirname, '../k8s/grafana-dashboards.yaml'),
}

if (import.meta.main) {
  for (const [file, d] of Object.entries(DASHBOARDS))
    writeFileSync(join(OUTPUT.dir, file), dashboardJson(d))
  writeFileSync(OUTPUT.configMap, configMapYaml())
}
