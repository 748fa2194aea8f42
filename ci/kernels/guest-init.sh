#!/bin/busybox sh
# /init of the kernel-matrix guest (busybox, no libc): sets up mounts, runs
# procwatch and the test execs, and prints everything on the serial console
# between PWM-* markers for matrix.py to assert. It judges nothing itself.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

echo "PWM-KERNEL $(uname -r)"
echo "PWM-CAP-LAST $(cat /proc/sys/kernel/cap_last_cap)"
echo "PWM-PROBE-SHA256 $(sha256sum /bin/pwprobe | cut -d" " -f1)"
# This shell's namespaces, which its execs share (readlink runs in them).
for ns in pid pid_for_children mnt net user uts ipc cgroup; do
  echo "PWM-NS-$ns $(readlink /proc/self/ns/$ns)"
done

# Fixtures: a tmpfs mount holding a copy of the probe and a directory, the
# same tmpfs bind-mounted elsewhere, a setuid-root copy, a #! script.
mkdir -p /mnt/t /mnt/b
mount -t tmpfs pwtmp /mnt/t
mkdir /mnt/t/d
cp /bin/pwprobe /mnt/t/t1
mount --bind /mnt/t /mnt/b
cp /bin/pwprobe /bin/suid-probe
chmod 4755 /bin/suid-probe
printf '#!/bin/sh\nexit 0\n' > /bin/pw-script
chmod 755 /bin/pw-script

/bin/procwatch --source ebpf --format jsonl --fields +all --exits -o /tmp/pw.jsonl 2>/tmp/pw.err &
pw=$!
i=0
until grep -q '"event":"start"' /tmp/pw.jsonl 2>/dev/null; do
  if ! kill -0 "$pw" 2>/dev/null || [ "$i" -ge 1200 ]; then break; fi
  sleep 0.1
  i=$((i + 1))
done
echo "PWM-STARTED after $i polls"

/bin/pwprobe plain pwm-plain 'two words'
/bin/pwprobe asuser 65534 /bin/pwprobe plain pwm-nobody
/bin/pwprobe asuser 65534 /bin/suid-probe plain pwm-setuid
(cd /mnt/t/d && /mnt/t/t1 plain pwm-tmpfs)
(cd /mnt/b/d && /mnt/b/t1 plain pwm-bind)
/bin/pw-script pwm-script
/bin/pwprobe exit 7 300 pwm-exit
echo "PWM-EXIT-STATUS $?"

# Let the reader poll the ring (every 100 ms) before stopping.
sleep 1
kill -INT "$pw" 2>/dev/null
wait "$pw"
echo "PWM-PROCWATCH-STATUS $?"
echo PWM-BEGIN-JSONL
[ -f /tmp/pw.jsonl ] && cat /tmp/pw.jsonl
echo PWM-END-JSONL
echo PWM-BEGIN-STDERR
cat /tmp/pw.err
echo PWM-END-STDERR
echo PWM-DONE
poweroff -f
