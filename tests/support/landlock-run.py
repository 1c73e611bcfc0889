#!/usr/bin/python3
# Applies a Landlock ruleset, the `ruleset` JSON of the API's landlockRuleset, to itself and
# then execs a program, as a launcher would: landlock_create_ruleset with the handled rights,
# one landlock_add_rule (path beneath) per rule, no_new_privs, landlock_restrict_self.
# Python's ctypes reaches the three syscalls directly; no library wraps them in Debian.
#
#   landlock-run.py RULESET.json -- ARGV...
# Exit 125: the ruleset could not be applied (the message says why).
import ctypes
import json
import os
import sys

# x86_64 and the generic table share these numbers (Linux 5.13+).
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38


class RulesetAttr(ctypes.Structure):
    # Only the first member: older kernels take the struct's prefix they know.
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def fail(message):
    print(f"landlock-run: {message}", file=sys.stderr)
    sys.exit(125)


def check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        fail(f"{what}: {os.strerror(err)}")
    return result


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        fail("usage: landlock-run.py RULESET.json -- ARGV...")
    with open(sys.argv[1]) as f:
        ruleset = json.load(f)
    argv = sys.argv[3:]
    abi = check(
        libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION),
        "Landlock ABI version",
    )
    if abi < ruleset["abi"]:
        fail(f"the kernel has Landlock ABI {abi}, the ruleset needs {ruleset['abi']}")
    attr = RulesetAttr(ruleset["handledAccessFsMask"])
    fd = check(
        libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0),
        "landlock_create_ruleset",
    )
    for rule in ruleset["rules"]:
        try:
            parent = os.open(rule["path"], os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            fail(f"{rule['path']}: {e.strerror}")
        beneath = PathBeneathAttr(rule["allowedAccessMask"], parent)
        check(
            libc.syscall(SYS_LANDLOCK_ADD_RULE, fd, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(beneath), 0),
            f"landlock_add_rule {rule['path']}",
        )
        os.close(parent)
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    check(libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0), "landlock_restrict_self")
    os.close(fd)
    os.execv(argv[0], argv)


main()
