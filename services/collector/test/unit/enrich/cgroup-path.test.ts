// cgroup paths as kubelet, Docker, Podman and systemd lay them out → container, pod, unit.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  type CgroupIdentity,
  CgroupPathCache,
  parseCgroupPath,
} from '../../../src/enrich/cgroup-path.ts'

const ID = 'a3f1c0d2e4b5968778695a4b3c2d1e0f9a8b7c6d5e4f30211203f4e5d6c7b8a9'
const UID = '2b1e5c3a-9d4f-4e8b-a1c2-3d4e5f607182'
const UID_ = UID.replaceAll('-', '_')

const cases: { name: string; path: string; want: Omit<CgroupIdentity, 'path'> }[] = [
  {
    name: 'systemd driver, containerd, burstable',
    path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
    want: { runtime: 'containerd', containerId: ID, podUid: UID, qosClass: 'burstable' },
  },
  {
    name: 'systemd driver, CRI-O, besteffort',
    path: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope`,
    want: { runtime: 'crio', containerId: ID, podUid: UID, qosClass: 'besteffort' },
  },
  {
    name: 'systemd driver, dockershim/cri-dockerd, guaranteed',
    path: `/kubepods.slice/kubepods-pod${UID_}.slice/docker-${ID}.scope`,
    want: { runtime: 'docker', containerId: ID, podUid: UID, qosClass: 'guaranteed' },
  },
  {
    name: 'systemd driver, kubelet under its own slice (kind)',
    path: `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
    want: { runtime: 'containerd', containerId: ID, podUid: UID, qosClass: 'burstable' },
  },
  {
    name: 'systemd driver, pod sandbox-level cgroup (no container)',
    path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
    want: { podUid: UID, qosClass: 'burstable' },
  },
  {
    name: 'CRI-O conmon is the monitor, not the container',
    path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/crio-conmon-${ID}.scope`,
    want: { podUid: UID, qosClass: 'burstable' },
  },
  {
    name: 'cgroupfs driver, burstable',
    path: `/kubepods/burstable/pod${UID}/${ID}`,
    want: { containerId: ID, podUid: UID, qosClass: 'burstable' },
  },
  {
    name: 'cgroupfs driver, besteffort',
    path: `/kubepods/besteffort/pod${UID}/${ID}`,
    want: { containerId: ID, podUid: UID, qosClass: 'besteffort' },
  },
  {
    name: 'cgroupfs driver, guaranteed (no QoS level)',
    path: `/kubepods/pod${UID}/${ID}`,
    want: { containerId: ID, podUid: UID, qosClass: 'guaranteed' },
  },
  {
    name: 'cgroupfs driver, CRI-O',
    path: `/kubepods/burstable/pod${UID}/crio-${ID}`,
    want: { runtime: 'crio', containerId: ID, podUid: UID, qosClass: 'burstable' },
  },
  {
    name: 'a sub-cgroup inside a container belongs to the container',
    path: `/kubepods/burstable/pod${UID}/${ID}/init.scope`,
    want: { containerId: ID, podUid: UID, qosClass: 'burstable' },
  },
  {
    name: 'plain Docker, systemd driver',
    path: `/system.slice/docker-${ID}.scope`,
    want: { runtime: 'docker', containerId: ID },
  },
  {
    name: 'plain Docker, cgroupfs driver',
    path: `/docker/${ID}`,
    want: { runtime: 'docker', containerId: ID },
  },
  {
    name: 'Podman (rootful)',
    path: `/machine.slice/libpod-${ID}.scope`,
    want: { runtime: 'podman', containerId: ID },
  },
  {
    name: 'Podman (rootless, user session)',
    path: `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container`,
    want: { runtime: 'podman', containerId: ID },
  },
  {
    name: 'Podman conmon is not the container',
    path: `/machine.slice/libpod-conmon-${ID}.scope`,
    want: { systemdUnit: `libpod-conmon-${ID}.scope` },
  },
  {
    name: 'host service',
    path: '/system.slice/nginx.service',
    want: { systemdUnit: 'nginx.service' },
  },
  {
    name: 'login session',
    path: '/user.slice/user-1000.slice/session-3.scope',
    want: { systemdUnit: 'session-3.scope' },
  },
  {
    name: 'innermost unit of a user manager',
    path: '/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service',
    want: { systemdUnit: 'foo.service' },
  },
  { name: 'root cgroup', path: '/', want: {} },
  { name: 'a slice only', path: '/system.slice', want: {} },
  {
    name: 'a bare 64-hex directory outside kubepods and docker is not a container',
    path: `/other/${ID}`,
    want: {},
  },
  {
    name: 'a short id is not a container id',
    path: `/system.slice/docker-${ID.slice(0, 12)}.scope`,
    want: { systemdUnit: `docker-${ID.slice(0, 12)}.scope` },
  },
]

describe('parseCgroupPath', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(parseCgroupPath(c.path), { path: c.path, ...c.want })
    })
  }
})

describe('CgroupPathCache', () => {
  // Any directory tree works: the cache keys directories by inode, as the kernel does cgroups.
  const tree = () => mkdtempSync(join(tmpdir(), 'ebbflow-cgroup-cache-'))
  const ino = (p: string) => Number(statSync(p, { bigint: true }).ino)

  it('finds a directory created after the first walk by walking again on a miss', () => {
    const root = tree()
    try {
      let now = 0
      const cache = new CgroupPathCache({ root, maxEntries: 100, rescanMinMs: 100, now: () => now })
      const a = join(root, 'system.slice/nginx.service')
      mkdirSync(a, { recursive: true })
      assert.equal(cache.resolve(ino(a))?.systemdUnit, 'nginx.service')
      const b = join(root, `kubepods/burstable/pod${UID}/${ID}`)
      mkdirSync(b, { recursive: true })
      // Within rescanMinMs of the last walk a miss does not walk again.
      assert.equal(cache.resolve(ino(b)), undefined)
      now = 150
      assert.deepEqual(cache.resolve(ino(b)), {
        path: `/kubepods/burstable/pod${UID}/${ID}`,
        containerId: ID,
        podUid: UID,
        qosClass: 'burstable',
      })
      assert.equal(cache.stats().scans, 2)
      // Gone from the disk, still resolvable (ids are not reused).
      rmSync(b, { recursive: true })
      assert.equal(cache.resolve(ino(a))?.systemdUnit, 'nginx.service')
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })

  it('keeps at most maxEntries, forgetting the oldest', () => {
    const root = tree()
    try {
      for (let i = 0; i < 10; i++) mkdirSync(join(root, `u${i}.service`))
      const cache = new CgroupPathCache({ root, maxEntries: 5, rescanMinMs: 0 })
      cache.scan()
      assert.equal(cache.stats().entries, 5)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
