"""The fallback sandbox's kernel layers, through ``ctypes`` (Linux; standard library only, as
:mod:`nnparity.verify.launcher` loads this file by path before the learner runs).

- :func:`enter_namespaces`: new user, mount, PID, network, IPC and UTS namespaces, the caller's
  own user and group mapped onto themselves (no helper binary, no privilege needed where the
  kernel lets unprivileged users create user namespaces);
- :func:`build_view` (inside them, as the namespace's init): the whole filesystem read-only and
  private, tmpfs over the hidden folders (nnparity's packages, its checkout), a private ``/tmp``
  and a minimal ``/dev``, the writable copy of the learner's folder bound at the folder's own
  path (the original is unreachable), a fresh ``/proc`` of the new PID namespace with its
  ``sys`` and trigger files read-only, no nested user namespaces;
- :func:`drop_privileges`: no capabilities after ``exec``, ``no_new_privs``;
- :func:`restrict`: Landlock (ABI >= 1) where the kernel offers it: reading only the listed
  trees minus the hidden folders, writing only the listed ones; no TCP from ABI 4, no signals
  or abstract sockets out of the domain from ABI 6.

Every function raises ``OSError`` naming the step that failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC = 1, 2, 4, 8, 4096, 16384
PF_EXITING = 0x4
"""The kernel's flag (``/proc/PID/stat``, field 9) of a process that is exiting: it ended, or
the end of its PID namespace is killing it; no process anyone left running."""
MS_PRIVATE = 1 << 18
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY = 0x1
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (asm-generic, x86)
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 28, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECURE_NOROOT = 0xEF  # NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, locked; KEEP_CAPS off
DEVICES = ("null", "zero", "full", "random", "urandom")
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")
PRIVATE = ("/tmp", "/dev", "/run", "/var/run")  # each replaced by an empty tmpfs (/run: sockets)
NAMESPACES = ("user", "mount", "PID", "network", "IPC", "UTS")

# Landlock access rights, by the ABI that introduced them.
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_ALL = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FS_FILE = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | (1 << 14) | (1 << 15)  # + truncate, ioctl
NET_ALL = 0b11  # bind and connect TCP (ABI 4)
SCOPE_ALL = 0b11  # abstract unix sockets and signals (ABI 6)
RULE_PATH_BENEATH = 1


def _call(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def enter_namespaces() -> None:
    """Unshare the namespaces of :data:`NAMESPACES` (the next child forked is PID 1 of the new
    PID namespace) and map the caller's user and group onto themselves."""
    uid, gid = os.getuid(), os.getgid()
    flags = (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
             | CLONE_NEWUTS)
    _call(libc.unshare(flags), "unshare(user, mount, PID, network, IPC, UTS)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        try:
            Path(f"/proc/self/{name}").write_text(text)
        except OSError as exc:
            raise OSError(exc.errno, f"writing /proc/self/{name}: {exc.strerror}") from None


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None
           ) -> None:
    _call(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                     ctypes.c_ulong(flags), data.encode() if data else None),
          f"mount {fstype or 'bind'} on {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _set_attr(path: str, *, read_only: bool, recursive: bool, private: bool = False) -> None:
    attr = _MountAttr(MOUNT_ATTR_RDONLY if read_only else 0, 0 if read_only else MOUNT_ATTR_RDONLY,
                      MS_PRIVATE if private else 0, 0)
    _call(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(),
                       AT_RECURSIVE if recursive else 0, ctypes.byref(attr),
                       ctypes.sizeof(attr)),
          f"mount_setattr {path}")


def _bind(fd: int, target: Path, *, writable: bool = False) -> None:
    """Bind what ``fd`` (``O_PATH``, opened before anything was covered) names at ``target``."""
    if not target.exists():
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            target.mkdir(parents=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    _mount(f"/proc/self/fd/{fd}", str(target), None, MS_BIND | MS_REC)
    _set_attr(str(target), read_only=not writable, recursive=not writable)


def _covered(path: Path, covers: list[Path]) -> bool:
    return any(path == c or c in path.parents for c in covers)


def build_view(folder: Path, copy: Path, script: Path, script_at: Path, hide: list[Path],
               keep: list[Path], tmp_bytes: int) -> None:
    """The learner's filesystem (see the module docstring); ends in ``folder``.

    ``script`` (the child script) appears read-only at ``script_at`` in the minimal ``/dev``;
    ``keep`` (the interpreter's folders) stay visible even inside a hidden folder or ``/tmp``;
    ``folder``'s parent stays visible (read-only) for ``os.pardir`` imports. The folders of
    :data:`PRIVATE` become empty tmpfs (``/tmp`` writable, the others read-only).
    """
    covers = [*hide, *(Path(p) for p in PRIVATE if os.path.isdir(p) and not os.path.islink(p))]
    binds = [(p, os.open(p, os.O_PATH), False) for p in keep if _covered(p, covers)]
    if _covered(folder.parent, covers) and not _covered(folder.parent, hide):
        binds.append((folder.parent, os.open(folder.parent, os.O_PATH), False))
    binds += [(script_at, os.open(script, os.O_PATH), False),
              (folder, os.open(copy, os.O_PATH), True)]
    devices = [(Path("/dev", d), os.open(f"/dev/{d}", os.O_PATH), True) for d in DEVICES
               if os.path.exists(f"/dev/{d}")]
    _set_attr("/", read_only=True, recursive=True, private=True)
    for cover in covers:
        if cover.is_dir():
            size = tmp_bytes if cover == Path("/tmp") else 1 << 20
            _mount("tmpfs", str(cover), "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0755")
    for path, fd, writable in binds + devices:
        _bind(fd, path, writable=writable)
        os.close(fd)
    shm = Path("/dev/shm")
    shm.mkdir()
    _mount("tmpfs", str(shm), "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")
    for cover in covers:
        if cover != Path("/tmp") and cover.is_dir():
            _set_attr(str(cover), read_only=True, recursive=False)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # No nested user namespace, where a learner would hold capabilities again (where this
    # fails, the mounts below are locked for a nested namespace all the same).
    with contextlib.suppress(OSError):
        Path("/proc/sys/user/max_user_namespaces").write_text("0")
    for name in PROC_READ_ONLY:
        path = f"/proc/{name}"
        if os.path.exists(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _set_attr(path, read_only=True, recursive=True)
    os.chdir(folder)


def drop_privileges() -> None:
    """After the next ``exec``: no capabilities, even as root (where this process holds
    ``CAP_SETPCAP``: in its own user namespace, or as root), and none to be gained."""
    if libc.prctl(PR_SET_SECUREBITS, SECURE_NOROOT, 0, 0, 0) == 0:
        _call(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient caps")
        for cap in range(64):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
                break  # past the last capability this kernel knows
    _call(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where it has none (or disabled it)."""
    try:
        return max(0, int(libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)))
    except (AttributeError, OSError):
        return 0


class _Ruleset(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def readable_rules(trees: list[Path], holes: list[Path]) -> list[tuple[Path, int]]:
    """Read rights on ``trees`` minus ``holes``: a hole inside a tree splits it into its
    entries (the directories on the way to the hole listable, nothing in the hole)."""
    rules: list[tuple[Path, int]] = []

    def add(tree: Path) -> None:
        inside = [h for h in holes if h == tree or tree in h.parents]
        if not inside:
            rules.append((tree, FS_READ))
        elif tree not in inside:
            rules.append((tree, FS_READ_DIR))
            for entry in sorted(tree.iterdir()):
                if entry.exists():
                    add(entry.resolve())

    for tree in trees:
        if tree.exists():
            add(tree.resolve())
    return rules


def restrict(abi: int, read: list[tuple[Path, int]], write: list[Path], files: list[Path]
             ) -> None:
    """Landlock this process (after ``no_new_privs``): ``read`` rules, everything beneath the
    ``write`` folders, read/write on the ``files`` (devices); TCP and signals per ABI."""
    fs = FS_ALL[max(k for k in FS_ALL if k <= abi)]
    ruleset = _Ruleset(fs, NET_ALL if abi >= 4 else 0, SCOPE_ALL if abi >= 6 else 0)
    size = ctypes.sizeof(_Ruleset) if abi >= 6 else (16 if abi >= 4 else 8)
    fd = _call(libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(ruleset), size, 0),
               "landlock_create_ruleset")
    rules = [*read, *((p, fs) for p in write), *((p, fs & FS_FILE) for p in files)]
    for path, access in rules:
        try:
            target = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # gone since it was listed
        allowed = access & fs if path.is_dir() else access & fs & FS_FILE
        rule = _PathBeneath(allowed, target)
        _call(libc.syscall(SYS_LANDLOCK_ADD_RULE, fd, RULE_PATH_BENEATH, ctypes.byref(rule), 0),
              f"landlock_add_rule {path}")
        os.close(target)
    _call(libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0), "landlock_restrict_self")
    os.close(fd)
