#!/bin/bash
# A real systemd system manager for tests, isolated from the host:
#   systemd-sandbox.sh boot WORKDIR UNITDIR   runs in the foreground (the caller backgrounds it);
#                                            systemd becomes PID 1 of new PID, mount, UTS, IPC,
#                                            network and cgroup namespaces, with tmpfs on /run,
#                                            /tmp, /var and an overlay on /etc, so nothing it
#                                            creates or cleans up at boot reaches the host.
#   systemd-sandbox.sh pid WORKDIR            the manager's PID on the host, once it is up
#   systemd-sandbox.sh run WORKDIR CMD...     runs CMD inside the sandbox (systemctl, journalctl…)
#   systemd-sandbox.sh kill WORKDIR           SIGKILLs the manager (and so every process in its
#                                            PID namespace), removes the cgroups it used
# SYSTEMD_UNIT_PATH is UNITDIR only; the manager starts cmk-test.target.
set -euo pipefail
cmd=$1 work=$2
shift 2

cgroup_name() { echo "cmk-syncer-test-$(basename "$work")"; }

case $cmd in
boot)
    units=$1
    mkdir -p "$work/etc-upper" "$work/etc-work"
    # The few units a boot needs besides the test's own: empty targets, and journald (socket
    # activated, as on a real system) from the installed systemd, without the sockets we skip.
    for target in sysinit basic shutdown network-online multi-user; do
        [ -e "$units/$target.target" ] || printf '[Unit]\nDescription=%s (test)\n' "$target" >"$units/$target.target"
    done
    cp /lib/systemd/system/systemd-journald.socket "$units/"
    sed -e 's/^Sockets=.*/Sockets=systemd-journald.socket/' \
        -e 's/^After=.*/After=systemd-journald.socket/' /lib/systemd/system/systemd-journald.service >"$units/systemd-journald.service"
    # A cgroup of our own in the host's cgroup2 tree becomes the root of the sandbox's cgroup
    # namespace: systemd manages that subtree and cannot see or touch anything else.
    cg=/sys/fs/cgroup/unified/$(cgroup_name)
    [ -d /sys/fs/cgroup/unified ] || cg=/sys/fs/cgroup/$(cgroup_name)
    mkdir -p "$cg"
    echo "$cg" > "$work/cgroup"
    echo $$ > "$cg/cgroup.procs"
    echo $$ > "$work/boot.pid"
    exec unshare --fork --pid --mount --mount-proc --uts --ipc --net --cgroup --propagation private \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin container=cmk-syncer-test \
        SYSTEMD_UNIT_PATH="$units" CMK_SANDBOX_WORK="$work" \
        "$0" init "$work"
    ;;
init)
    # PID 1 of the new namespaces: make the private file system, then become systemd.
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/etc-upper,workdir=$work/etc-work" /etc
    # The work directory (often under /tmp) stays visible at the same path.
    mount --bind "$work" /mnt
    mount -t tmpfs -o mode=0755 tmpfs /run
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mount -t tmpfs -o mode=0755 tmpfs /var
    mkdir -p /var/lib /var/log /var/cache /var/tmp "$work"
    chmod 1777 /var/tmp
    mount --move /mnt "$work"
    mount -t tmpfs tmpfs /sys/fs/cgroup
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
    # Units and the config may only be installed after the overlay exists: the caller puts
    # files for /etc in $work/etc-upper beforehand, which the overlay shows at /etc.
    hostname cmk-test
    exec /lib/systemd/systemd --system --unit=cmk-test.target --log-target=console --show-status=no
    ;;
pid)
    # The manager is the child of the unshare process that `boot` exec'd into.
    boot=$(cat "$work/boot.pid")
    cat "/proc/$boot/task/$boot/children" | awk '{print $1}'
    ;;
run)
    pid=$("$0" pid "$work")
    exec nsenter --target "$pid" --mount --pid --uts --ipc --net --cgroup -- "$@"
    ;;
kill)
    pid=$("$0" pid "$work" 2>/dev/null || true)
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    boot=$(cat "$work/boot.pid" 2>/dev/null || true)
    for _ in $(seq 50); do [ -n "$boot" ] && [ -d "/proc/$boot" ] || break; sleep 0.1; done
    if [ -f "$work/cgroup" ]; then
        cg=$(cat "$work/cgroup")
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    fi
    ;;
*)
    echo "usage: $0 boot|pid|run|kill WORKDIR ..." >&2; exit 2 ;;
esac
