#!/usr/bin/python3
"""Run a command inside an emulation of a systemd unit's sandbox, on a machine where systemd
does not run (containers, CI). This shows that the hardening options in deploy/cdcsync.service
leave the worker able to start, connect, write its spool files and serve its metrics.

    scripts/systemd-sandbox.py UNIT [--set Key=Value ...] [--add Key=Value ...] -- COMMAND [ARG...]

Needs root (it makes a mount namespace and then drops to the user 'nobody') and python3-seccomp
(Debian's package). It reads these settings from the unit's [Service] section and applies them
the way systemd does:

  SystemCallFilter=, SystemCallErrorNumber=, SystemCallArchitectures=native   seccomp, with the
      syscall groups expanded by 'systemd-analyze syscall-filter' (systemd's own tables)
  RestrictAddressFamilies=, RestrictNamespaces=, RestrictRealtime=, LockPersonality=,
  MemoryDenyWriteExecute=                                                       seccomp rules
  ProtectProc=, ProcSubset=            a new /proc mounted with hidepid= and subset=
  PrivateDevices=                      a /dev holding only null, zero, full, random, urandom, tty
  PrivateTmp=, ProtectHome=            empty /tmp and /var/tmp; /home, /root and /run/user hidden
  ProtectSystem=strict                 every other mount read-only
  StateDirectory=, ReadWritePaths=     an empty writable /var/lib/NAME owned by the user
  User=, NoNewPrivileges=, CapabilityBoundingSet=, UMask=   the user 'nobody' (the unit's user need
      not exist here), no capabilities, no new privileges, the umask

Anything else in the unit is not emulated; a setting this script cannot apply is an error, so a
new hardening option is either emulated here or named in NOT_EMULATED with the reason.
--set replaces a setting and --add adds a line to it (e.g. --set MemoryDenyWriteExecute=true or
--add SystemCallFilter=~@resources, to show what an option would break).
"""
import errno
import os
import subprocess
import sys
import tempfile

INSIDE = "CDCSYNC_SANDBOX_INSIDE"

# Applied by systemd outside what a process can observe here, or with no effect on a process that
# is already unprivileged in a mount namespace; the reason is given for each.
NOT_EMULATED = {
    "ProtectKernelTunables": "/proc/sys and /sys read-only: covered by ProtectSystem=strict and ProcSubset=pid here",
    "ProtectKernelModules": "module syscalls are in @privileged (denied); /usr/lib/modules is read-only here",
    "ProtectKernelLogs": "syslog() is in @privileged (denied); /dev/kmsg is absent under PrivateDevices",
    "ProtectControlGroups": "/sys/fs/cgroup read-only: covered by ProtectSystem=strict here",
    "ProtectClock": "clock-setting syscalls are in @privileged (denied)",
    "ProtectHostname": "sethostname() is in @privileged (denied)",
    "PrivateMounts": "the emulation always runs in its own mount namespace",
    "DevicePolicy": "device cgroup; PrivateDevices already leaves only the pseudo devices",
    "RestrictSUIDSGID": "the user owns no setuid files and cannot chown (no capabilities)",
    "RemoveIPC": "takes effect when the service stops",
    "AmbientCapabilities": "empty: nothing is raised",
}

SERVICE_KEYS_IGNORED = {
    "Type", "Group", "WorkingDirectory", "EnvironmentFile", "Environment", "ExecStartPre", "ExecStart",
    "Restart", "RestartSec", "TimeoutStopSec", "KillSignal", "RestartPreventExitStatus", "NotifyAccess",
}

CLONE_NEW = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]
AF = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000


def fail(message):
    print(f"systemd-sandbox: {message}", file=sys.stderr)
    sys.exit(2)


def service_settings(path):
    settings, section = {}, None
    with open(path, encoding="utf-8") as unit:
        for raw in unit:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
    return settings


def truthy(settings, key):
    return settings.get(key, ["no"])[-1].lower() in ("yes", "true", "1", "on", "strict", "full")


def expand(names, seen=None):
    """Syscall names of groups (@name) and single syscalls, with systemd's own tables."""
    seen = set() if seen is None else seen
    calls = set()
    for name in names:
        if not name.startswith("@"):
            calls.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        listing = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True, capture_output=True, text=True).stdout
        members = [l.strip() for l in listing.splitlines()[1:] if l.strip() and not l.strip().startswith("#")]
        calls |= expand(members, seen)
    return calls


def seccomp_filter(settings):
    import seccomp

    arch = seccomp.Arch.NATIVE
    known = {}
    for number in range(0, 1024):
        try:
            known[seccomp.resolve_syscall(arch, number).decode()] = number
        except ValueError:
            pass

    allowed, denied = None, set()
    for line in settings.get("SystemCallFilter", []):
        words = line.split()
        if words and words[0].startswith("~"):
            denied |= expand([words[0][1:]] + words[1:])
        else:
            allowed = (allowed or set()) | expand(words)
    error = getattr(errno, settings.get("SystemCallErrorNumber", ["EPERM"])[-1])
    # systemd turns an allow list into "everything else fails"; with the filter's default action
    # ALLOW here, the complement is listed instead, so the argument rules below can coexist.
    blocked = (set(known) - allowed if allowed is not None else set()) | denied
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in sorted(blocked & set(known)):
        rules.add_rule(seccomp.ERRNO(error), name)

    def deny(action, name, *args):
        if name in known and name not in blocked:
            rules.add_rule(action, name, *args)

    families = settings.get("RestrictAddressFamilies", [])
    if families:
        allowed_families = {AF[f] if f in AF else fail(f"unknown address family {f}") for f in " ".join(families).split()}
        for family in range(0, 64):
            if family not in allowed_families:
                deny(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
        deny(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, 64))
    if truthy(settings, "RestrictNamespaces"):
        for flag in CLONE_NEW:
            deny(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
            deny(seccomp.ERRNO(errno.EPERM), "unshare", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        deny(seccomp.ERRNO(errno.EPERM), "setns")
        # clone3 passes its flags in memory, which seccomp cannot read; glibc falls back to clone.
        deny(seccomp.ERRNO(errno.ENOSYS), "clone3")
    if truthy(settings, "RestrictRealtime"):
        for policy in (1, 2, 6):  # SCHED_FIFO, SCHED_RR, SCHED_DEADLINE
            deny(seccomp.ERRNO(errno.EPERM), "sched_setscheduler", seccomp.Arg(1, seccomp.EQ, policy))
        deny(seccomp.ERRNO(errno.EPERM), "sched_setattr")
    if truthy(settings, "LockPersonality"):
        # systemd allows the query (0xffffffff) and setting the current personality; one condition
        # per argument cannot say both, so only the query is allowed here (stricter, not looser).
        deny(seccomp.ERRNO(errno.EPERM), "personality", seccomp.Arg(0, seccomp.NE, 0xFFFFFFFF))
    if truthy(settings, "MemoryDenyWriteExecute"):
        both = PROT_WRITE | PROT_EXEC
        deny(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, both, both))
        deny(seccomp.ERRNO(errno.EPERM), "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        deny(seccomp.ERRNO(errno.EPERM), "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        deny(seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
    # SystemCallArchitectures=native: libseccomp's filter only admits the native ABI and kills
    # calls from any other (x32, i386), as systemd's does.
    if settings.get("SystemCallArchitectures", ["native"])[-1] != "native":
        fail("only SystemCallArchitectures=native is emulated")
    return rules


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def installation_paths(command):
    """The working directory and the command's path arguments that live in /tmp or /var/tmp.

    They stand in for the unit's /opt/cdcsync (a checkout or CI clone under /tmp holds the
    executable, the scripts and the config); PrivateTmp= must not hide them, as it would not hide
    /opt/cdcsync on a real host.
    """
    found = set()
    for path in [os.getcwd(), *(a for a in command if os.path.isabs(a) and os.path.exists(a))]:
        path = os.path.realpath(path)
        if os.path.isfile(path):
            path = os.path.dirname(path)
        if path.startswith(("/tmp/", "/var/tmp/")):
            found.add(path)
    return sorted(p for p in found if not any(p.startswith(q + "/") for q in found))


def set_up_mounts(settings, uid, gid, keep):
    mounts = [line.split()[4] for line in open("/proc/self/mountinfo", encoding="utf-8")]
    if truthy(settings, "PrivateTmp"):
        # The real /tmp and /var/tmp stay reachable at a scratch path while the empty ones go on,
        # so the installation's paths below them can be bound back.
        saved = tempfile.mkdtemp(prefix="sandbox-tmp-", dir="/run")
        for path in ("/tmp", "/var/tmp"):
            os.makedirs(saved + path, exist_ok=True)
            mount("--rbind", path, saved + path)
            mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", path)
        for path in keep:
            os.makedirs(path, exist_ok=True)
            mount("--rbind", saved + path, path)
        for path in ("/tmp", "/var/tmp"):
            subprocess.run(["umount", "-l", saved + path], check=True)
        # rmdir, never a recursive delete: these were mount points of the real /tmp.
        for path in (saved + "/var/tmp", saved + "/var", saved + "/tmp", saved):
            os.rmdir(path)
    if truthy(settings, "ProtectHome"):
        for path in ("/home", "/root", "/run/user"):
            if os.path.isdir(path):
                mount("-t", "tmpfs", "-o", "mode=000,ro", "tmpfs", path)
    state = [f"/var/lib/{name}" for line in settings.get("StateDirectory", []) for name in line.split()]
    writable = state + [p for line in settings.get("ReadWritePaths", []) for p in line.split()]
    if state:
        # A tmpfs over /var/lib of this namespace only: the state directory starts empty, as on a new host.
        mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", "/var/lib")
        for path in state:
            os.makedirs(path, mode=0o700)
            os.chown(path, uid, gid)
    if truthy(settings, "PrivateDevices"):
        # The pseudo devices are bound from the real /dev, kept reachable at a scratch path meanwhile.
        real = tempfile.mkdtemp(prefix="sandbox-dev-")
        mount("--rbind", "/dev", real)
        mount("-t", "tmpfs", "-o", "mode=755,nosuid", "tmpfs", "/dev")
        for name in ("null", "zero", "full", "random", "urandom", "tty"):
            open(f"/dev/{name}", "w", encoding="utf-8").close()
            mount("--bind", f"{real}/{name}", f"/dev/{name}")
        subprocess.run(["umount", "-l", real], check=True)
        os.rmdir(real)
        os.makedirs("/dev/shm", mode=0o1777)
        mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", "/dev/shm")
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"/dev/{name}")
    options = []
    if settings.get("ProtectProc"):
        options.append(f"hidepid={settings['ProtectProc'][-1]}")
    if settings.get("ProcSubset"):
        options.append(f"subset={settings['ProcSubset'][-1]}")
    if options:
        mount("-t", "proc", "-o", ",".join(["nosuid", "nodev", "noexec"] + options), "proc", "/proc")
    if settings.get("ProtectSystem", ["no"])[-1] == "strict":
        special = ("/proc", "/dev", "/tmp", "/var/tmp", "/var/lib", "/home", "/root", "/run/user")
        for path in mounts:
            if path in writable or any(path == s or path.startswith(s + "/") for s in special):
                continue
            # Some pseudo file systems refuse a read-only remount; nothing of them is writable by the user anyway.
            subprocess.run(["mount", "-o", "remount,bind,ro", path], stderr=subprocess.DEVNULL)


def main():
    args = sys.argv[1:]
    if "--" not in args or not args:
        fail("usage: systemd-sandbox.py UNIT [--set Key=Value ...] [--add Key=Value ...] -- COMMAND [ARG...]")
    split = args.index("--")
    unit, options, command = args[0], args[1:split], args[split + 1:]
    settings = service_settings(unit)
    for i in range(0, len(options), 2):
        if options[i] not in ("--set", "--add") or i + 1 >= len(options) or "=" not in options[i + 1]:
            fail(f"unknown option {options[i]}; use --set Key=Value or --add Key=Value")
        key, value = options[i + 1].split("=", 1)
        settings[key] = (settings.get(key, []) if options[i] == "--add" else []) + [value]

    emulated = {"SystemCallFilter", "SystemCallErrorNumber", "SystemCallArchitectures", "RestrictAddressFamilies",
                "RestrictNamespaces", "RestrictRealtime", "LockPersonality", "MemoryDenyWriteExecute", "ProtectProc",
                "ProcSubset", "PrivateDevices", "PrivateTmp", "ProtectHome", "ProtectSystem", "StateDirectory",
                "ReadWritePaths", "User", "NoNewPrivileges", "CapabilityBoundingSet", "UMask"}
    unknown = set(settings) - emulated - set(NOT_EMULATED) - SERVICE_KEYS_IGNORED
    if unknown:
        fail(f"cannot emulate {', '.join(sorted(unknown))}; emulate it here or name it in NOT_EMULATED with the reason")
    if os.geteuid() != 0:
        fail("needs root: it makes a mount namespace (CI runs as root)")
    try:
        import seccomp  # noqa: F401
    except ImportError:
        fail("python3-seccomp is missing: apt-get install python3-seccomp")

    if os.environ.get(INSIDE) != "1":
        # unshare without --fork execs this script again in the same process, so the command
        # ends up with the pid the caller started (signals reach it).
        os.environ[INSIDE] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable, *sys.argv])
    del os.environ[INSIDE]

    import pwd
    user = pwd.getpwnam("nobody")
    set_up_mounts(settings, user.pw_uid, user.pw_gid, installation_paths(command))
    os.setgroups([])
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    # Leaving uid 0 drops every capability (CapabilityBoundingSet= empty); the filter below sets no_new_privs.
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    os.umask(int(settings.get("UMask", ["0022"])[-1], 8))
    seccomp_filter(settings).load()
    os.execvp(command[0], command)


main()
