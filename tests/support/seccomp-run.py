#!/usr/bin/python3
# Runs a program under an OCI runtime-spec seccomp profile, loaded with libseccomp (Debian's
# python3-seccomp), as runc would load it: the default action, the architectures, and one rule
# per allowed name. Used by the acceptance tests to check a generated profile against the
# workload it was generated from.
#
#   seccomp-run.py PROFILE.json -- ARGV...     load the profile, then exec ARGV
#   seccomp-run.py PROFILE.json --probe NAME   load the profile, then call syscall NAME once;
#                                              exit 0 if it was refused with EPERM, 3 if it ran,
#                                              4 for any other error
#   PROFILE.json "-" loads no profile (the probe's control run).
# Exit 125: the profile could not be loaded (the message says why).
import ctypes
import errno
import json
import os
import sys

import seccomp

ARCHES = {
    "SCMP_ARCH_X86_64": seccomp.Arch.X86_64,
    "SCMP_ARCH_X86": seccomp.Arch.X86,
    "SCMP_ARCH_X32": seccomp.Arch.X32,
    "SCMP_ARCH_AARCH64": seccomp.Arch.AARCH64,
    "SCMP_ARCH_ARM": seccomp.Arch.ARM,
}


def fail(message):
    sys.stderr.write(f"seccomp-run: {message}\n")
    sys.exit(125)


def action(name, errno_ret):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno.EPERM if errno_ret is None else errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return seccomp.TRAP
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    fail(f"unsupported action {name!r}")


def build(profile):
    f = seccomp.SyscallFilter(defaction=action(profile["defaultAction"], profile.get("defaultErrnoRet")))
    for arch in profile.get("architectures", []):
        if arch not in ARCHES:
            fail(f"unknown architecture {arch!r}")
        if ARCHES[arch] != seccomp.Arch.NATIVE and not f.exist_arch(ARCHES[arch]):
            f.add_arch(ARCHES[arch])
    for rule in profile.get("syscalls", []):
        if rule.get("args"):
            fail("argument conditions are not supported here")
        act = action(rule["action"], rule.get("errnoRet"))
        for name in rule["names"]:
            try:
                f.add_rule(act, name)
            except Exception as err:  # libseccomp does not know the name on any architecture
                fail(f"cannot add a rule for {name!r}: {err}")
    return f


def main(argv):
    if len(argv) < 3:
        fail("usage: seccomp-run.py PROFILE.json (-- ARGV... | --probe NAME)")
    path, mode, rest = argv[0], argv[1], argv[2:]
    filt = None
    if path != "-":
        with open(path) as fh:
            filt = build(json.load(fh))
    if mode == "--probe":
        nr = seccomp.resolve_syscall(seccomp.Arch.NATIVE, rest[0])
        # Everything the probe needs is set up before the filter is loaded.
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syscall
        call.restype = ctypes.c_long
        if filt is not None:
            filt.load()
        ret = call(ctypes.c_long(nr), ctypes.c_long(0), ctypes.c_long(0))
        err = ctypes.get_errno()
        os._exit(3 if ret != -1 else (0 if err == errno.EPERM else 4))
    if mode != "--" or not rest:
        fail("expected -- ARGV...")
    if filt is not None:
        filt.load()
    os.execv(rest[0], rest)


main(sys.argv[1:])
