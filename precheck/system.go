package precheck

import (
	"context"
	"fmt"
	"strings"
)

// supportedOS maps os-release IDs to the name shown and the minimum release.
var supportedOS = map[string]struct {
	name string
	min  Version
}{
	"centos":    {"CentOS", Version{7, 6}},
	"rhel":      {"RHEL", Version{7, 6}},
	"rocky":     {"Rocky Linux", Version{7, 6}},
	"almalinux": {"AlmaLinux", Version{7, 6}},
	"anolis":    {"Anolis OS", Version{7, 6}},
	// Alibaba Cloud Linux numbers its releases 2.1903 (the CentOS 7
	// compatible line) and 3: every release of it is at least the 7.6 level.
	"alinux": {"Alibaba Cloud Linux", Version{2}},
	"ubuntu": {"Ubuntu", Version{18, 4}},
}

func checkOSRelease(_ context.Context, s *Snapshot, _ Options) Result {
	b, err := s.Read(fileOSRelease)
	if err != nil {
		return skip(err)
	}
	kv := ParseOSRelease(b)
	id := strings.ToLower(kv["ID"])
	pretty := kv["PRETTY_NAME"]
	if pretty == "" {
		pretty = strings.TrimSpace(kv["NAME"] + " " + kv["VERSION_ID"])
	}
	sup, ok := supportedOS[id]
	if !ok {
		return Result{Status: Warn,
			Detail: fmt.Sprintf("%s (ID=%s) is not a tested distribution; tested: CentOS/RHEL/Rocky/AlmaLinux/Anolis ≥ 7.6, Alibaba Cloud Linux, Ubuntu ≥ 18.04", orUnknown(pretty), orUnknown(id)),
			Fix:    "use a tested distribution, or go ahead knowing this one is untested"}
	}
	ver, ok := ParseVersion(kv["VERSION_ID"])
	// os-release of the RHEL 7 family says only "7": the minor is in
	// centos-release or redhat-release.
	if ok && len(ver) == 1 && sup.min[0] == 7 && ver[0] == 7 {
		for _, f := range []string{fileCentOSRelease, fileRedhatRelease} {
			if rb, err := s.Read(f); err == nil {
				if rv, ok := ParseReleaseFile(rb); ok && len(rv) >= 2 {
					ver = rv
					break
				}
			}
		}
		if len(ver) == 1 {
			return Result{Status: Warn,
				Detail: fmt.Sprintf("%s: the minor release is unknown (no etc/centos-release or etc/redhat-release with one); 7.6 or later is required", sup.name),
				Fix:    "check the release with: cat /etc/redhat-release; update to 7.6 or later: yum update"}
		}
	}
	if !ok {
		return Result{Status: Warn, Detail: fmt.Sprintf("%s: VERSION_ID %q is not a release number", sup.name, kv["VERSION_ID"]),
			Fix: "check etc/os-release: VERSION_ID should be the release, for example 7.9 or 22.04"}
	}
	vs := verString(ver, id)
	if ver.Compare(sup.min) < 0 {
		return Result{Status: Fail,
			Detail: fmt.Sprintf("%s %s is older than the supported %s", sup.name, vs, verString(sup.min, id)),
			Fix:    upgradeFix(id, sup.min, sup.name)}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s %s is supported", sup.name, vs)}
}

func upgradeFix(id string, min Version, name string) string {
	if id == "ubuntu" {
		return "upgrade to Ubuntu 18.04 or later: do-release-upgrade"
	}
	return fmt.Sprintf("upgrade to %s %s or later: yum update", name, verString(min, id))
}

func verString(v Version, id string) string {
	parts := make([]string, len(v))
	for i, n := range v {
		if id == "ubuntu" && i == 1 {
			parts[i] = fmt.Sprintf("%02d", n)
		} else {
			parts[i] = fmt.Sprint(n)
		}
	}
	return strings.Join(parts, ".")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// minEL7Kernel is the oldest supported RHEL 7 kernel release.
var minEL7Kernel = Version{957, 21, 3}

func checkKernel(_ context.Context, s *Snapshot, _ Options) Result {
	b, err := s.Read(fileOSReleaseK)
	if err != nil {
		return skip(err)
	}
	k, err := ParseKernel(string(b))
	if err != nil {
		return skipf(err.Error())
	}
	const fix = "update the kernel to 3.10.0-957.21.3.el7 or later (yum update kernel && reboot) or to an upstream kernel above 3.10"
	switch c := k.Version[:2].Compare(Version{3, 10}); {
	case c > 0:
		return Result{Status: Pass, Detail: fmt.Sprintf("kernel %s is above 3.10", k.Raw)}
	case c < 0:
		return Result{Status: Fail, Detail: fmt.Sprintf("kernel %s is older than 3.10", k.Raw), Fix: fix}
	}
	if len(k.Release) == 0 {
		return Result{Status: Fail, Detail: fmt.Sprintf("kernel %s: a 3.10 kernel is supported only as a RHEL 7 build 3.10.0-957.21.3 or later", k.Raw), Fix: fix}
	}
	if k.Release.Compare(minEL7Kernel) < 0 {
		return Result{Status: Fail, Detail: fmt.Sprintf("kernel %s is older than 3.10.0-957.21.3.el7", k.Raw), Fix: fix}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("kernel %s is 3.10.0-957.21.3.el7 or later", k.Raw)}
}

func cpuCount(s *Snapshot) (int, error) {
	b, err := s.Read(fileCPUInfo)
	if err != nil {
		return 0, err
	}
	return ParseCPUCount(b), nil
}

func checkCPU(_ context.Context, s *Snapshot, _ Options) Result {
	n, err := cpuCount(s)
	if err != nil {
		return skip(err)
	}
	if n < 1 {
		return Result{Status: Fail, Detail: "no CPU listed in proc/cpuinfo; at least 1 vCPU is required",
			Fix: "give the instance at least 1 vCPU"}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%d vCPU", n)}
}

const kibPerGiB = 1 << 20

// memClass returns the instance class in GB the memory belongs to: an
// instance sold as N GB reports less than N GiB (the kernel and firmware keep
// some: as little as 1.7 GiB for 2 GB), so anything from 83 % of N GiB
// counts as N GB (1.66 GiB for 2 GB, 3.32 GiB for 4 GB).
func memClass(kib int64) int {
	for _, gb := range []int{64, 32, 16, 8, 4, 2} {
		if kib*100 >= int64(gb)*kibPerGiB*83 {
			return gb
		}
	}
	return 0
}

func checkMem(_ context.Context, s *Snapshot, _ Options) Result {
	b, err := s.Read(fileMemInfo)
	if err != nil {
		return skip(err)
	}
	kib, err := ParseMemTotalKiB(b)
	if err != nil {
		return skipf(err.Error())
	}
	gib := float64(kib) / kibPerGiB
	c := memClass(kib)
	if c < 2 {
		return Result{Status: Fail, Detail: fmt.Sprintf("MemTotal %.2f GiB is below the 2 GB instance class (at least 1.66 GiB)", gib),
			Fix: "resize the instance to 2 GB of memory or more"}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("MemTotal %.2f GiB (%d GB class)", gib, c)}
}

func checkPerfClass(_ context.Context, s *Snapshot, _ Options) Result {
	n, err := cpuCount(s)
	if err != nil {
		return skip(err)
	}
	b, err := s.Read(fileMemInfo)
	if err != nil {
		return skip(err)
	}
	kib, err := ParseMemTotalKiB(b)
	if err != nil {
		return skipf(err.Error())
	}
	c := memClass(kib)
	mbps := 0
	switch {
	case n >= 2 && c >= 4:
		mbps = 350
	case n >= 1 && c >= 2:
		mbps = 200
	}
	if mbps == 0 {
		return Result{Status: Warn, ExpectedMbps: &mbps,
			Detail: fmt.Sprintf("%d vCPU / %d GB is below the smallest class (1 vCPU / 2 GB): no throughput is promised", n, c),
			Fix:    "resize the instance to at least 1 vCPU and 2 GB"}
	}
	return Result{Status: Pass, ExpectedMbps: &mbps,
		Detail: fmt.Sprintf("%d vCPU / %d GB class: up to %d Mbit/s encrypted", n, c, mbps)}
}
