package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) would
// need cgo).
const ClockTicks = 100

// ParseProcStat returns utime+stime, in clock ticks, from the content of
// /proc/PID/stat. The command name may contain spaces and parentheses, so
// the fields are counted from the last ')'.
func ParseProcStat(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/PID/stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/PID/stat: %d fields after the command name; want at least 13", len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/PID/stat utime: %w", err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/PID/stat stime: %w", err)
	}
	return u + s, nil
}

// ParseRSS returns VmRSS and VmHWM (peak RSS), in KiB, from the content of
// /proc/PID/status.
func ParseRSS(b []byte) (rss, hwm int64, err error) {
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("parse /proc/PID/status %s: %q is not \"N kB\"", k, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("parse /proc/PID/status %s: %q is not a size", k, f[0])
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
		seen++
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("parse /proc/PID/status: VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}

// ParseHostStat returns the busy and total clock ticks of all CPUs from the
// content of /proc/stat (its "cpu " line). Busy is everything but idle and
// iowait, so it includes the softirq time the kernel spends on packets,
// which no process is charged for.
func ParseHostStat(b []byte) (busy, total uint64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("parse /proc/stat: first line %q is not the \"cpu\" total", line)
	}
	// user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already counted in user.
	for i, s := range f[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc/stat field %d: %w", i+1, err)
		}
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total, nil
}

// procTicks reads utime+stime of a process.
func procTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	return ParseProcStat(b)
}

// procRSS reads VmRSS and VmHWM of a process, in KiB.
func procRSS(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	return ParseRSS(b)
}

// hostTicks reads the busy and total ticks of all CPUs.
func hostTicks() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read host cpu time: %w", err)
	}
	return ParseHostStat(b)
}
