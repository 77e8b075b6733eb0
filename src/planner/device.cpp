// Device profiles (see device.h). The figures of the built-in GPUs are the
// vendors' data-sheet numbers with the driver-reported totals; the achieved
// fractions are assumptions for a CUDA engine of llama.cpp's kind (dhi has no
// GPU backend yet, so nothing here could be calibrated): T4 decode reaching
// ~55% of 320 GB/s matches the ~40 tok/s commonly reported for 7B Q4_K_M.
#include "planner/device.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "engine/bandwidth.h"

namespace dhi::planner {

namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr double kGB = 1e9;

GpuSpec tesla_t4() { return {"Tesla T4", 15360 * kMiB, 320, 65, 0.55, 0.25}; }
GpuSpec tesla_p100() { return {"Tesla P100-PCIE-16GB", 16280 * kMiB, 732, 18.7, 0.45, 0.35}; }

// Colab: "12.7 GB" of system RAM, 2 vCPUs (one physical Xeon core at 2.2 GHz,
// ~10 GB/s streaming read for one core). Kaggle GPU sessions: 29 GB, 4 vCPUs
// (two cores at 2.0 GHz). The notebook runtime keeps ~1 GB of either.
const std::vector<DeviceProfile>& devices() {
  static const std::vector<DeviceProfile> kDevices = {
    {"t4", "Colab free T4: 1x Tesla T4 (15,360 MiB, 320 GB/s), 12.7 GB host RAM", 1, tesla_t4(),
     uint64_t(11.7 * kGB), 2, 10, 70.4, "data sheet", "data sheet"},
    {"p100", "Kaggle P100: 1x Tesla P100 (16,280 MiB, 732 GB/s), 29 GB host RAM", 1, tesla_p100(),
     uint64_t(28 * kGB), 4, 15, 128, "data sheet", "data sheet"},
    {"2xt4", "Kaggle 2xT4: 2x Tesla T4 (15,360 MiB, 320 GB/s each), 29 GB host RAM", 2, tesla_t4(),
     uint64_t(28 * kGB), 4, 15, 128, "data sheet", "data sheet"},
    {"colab-cpu", "Colab free CPU runtime: 2 vCPUs (1 Xeon core, 2.2 GHz), 12.7 GB RAM", 0,
     GpuSpec{"none", 0, 0, 0, 0, 0}, uint64_t(11.7 * kGB), 2, 10, 70.4, "data sheet", "assumed"},
  };
  return kDevices;
}

}  // namespace

std::span<const DeviceProfile> builtin_devices() { return devices(); }

const DeviceProfile* find_builtin_device(std::string_view name) {
  for (const DeviceProfile& d : devices())
    if (d.name == name) return &d;
  return nullptr;
}

double nominal_cpu_gflops(int32_t threads, double ghz) { return double(threads) * ghz * 32.0; }

double local_cpu_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return std::atof(line.c_str() + colon + 1) / 1000.0;
    }
  }
  return 0;
}

std::string local_cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

namespace {

// A cgroup v2 limit on this process (containers): memory.max minus what the
// group already uses; nullopt when unlimited or unknown.
std::optional<uint64_t> cgroup_headroom() {
  std::ifstream max_in("/sys/fs/cgroup/memory.max"), cur_in("/sys/fs/cgroup/memory.current");
  std::string max_s;
  uint64_t cur = 0;
  if (!(max_in >> max_s) || max_s == "max" || !(cur_in >> cur)) return std::nullopt;
  const uint64_t max = std::strtoull(max_s.c_str(), nullptr, 10);
  return max > cur ? max - cur : 0;
}

}  // namespace

Expected<uint64_t> local_available_ram() {
  std::ifstream in("/proc/meminfo");
  if (!in) return make_error("cannot read /proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") {
      const uint64_t avail = value * 1024;  // reported in kB
      const std::optional<uint64_t> cg = cgroup_headroom();
      return cg ? std::min(avail, *cg) : avail;
    }
  }
  return make_error("/proc/meminfo has no MemAvailable");
}

Expected<DeviceProfile> local_device(const LocalOptions& o) {
  DeviceProfile d;
  d.name = "local";
  d.cpu_threads = o.n_threads > 0 ? o.n_threads : int32_t(std::max(1u, std::thread::hardware_concurrency()));
  DHI_ASSIGN_OR_RETURN(d.ram_bytes, local_available_ram());
  d.memory_source = "MemAvailable";
  const double ghz = local_cpu_ghz();
  d.cpu_nominal_gflops = nominal_cpu_gflops(d.cpu_threads, ghz > 0 ? ghz : 2.0);
  if (o.calibration && o.calibration->bandwidth_gbs > 0) {
    d.cpu_bandwidth_gbs = o.calibration->bandwidth_gbs;
    // The calibration's nominal rate keeps the fractions consistent with it.
    if (o.calibration->nominal_gflops > 0) d.cpu_nominal_gflops = o.calibration->nominal_gflops;
    d.bandwidth_source = "calibration file";
  } else if (o.measure_bandwidth) {
    engine::BandwidthParams bp;
    bp.buffer_bytes = 256 * kMiB;
    bp.passes = 5;
    bp.n_threads = d.cpu_threads;
    DHI_ASSIGN_OR_RETURN(engine::BandwidthResult b, engine::measure_read_bandwidth(bp));
    d.cpu_bandwidth_gbs = b.median_gbs;
    d.bandwidth_source = "measured now";
  } else {
    d.bandwidth_source = "unknown";
  }
  char desc[256];
  std::snprintf(desc, sizeof desc, "this machine: %s, %d threads, %.1f GB available, %.1f GB/s read (%s)",
                local_cpu_name().c_str(), d.cpu_threads, double(d.ram_bytes) / kGB, d.cpu_bandwidth_gbs,
                d.bandwidth_source.c_str());
  d.description = desc;
  return d;
}

Expected<DeviceProfile> custom_device(double vram_gb, int32_t n_gpus, double ram_gb, double bandwidth_gbs,
                                      int32_t cpu_threads) {
  if (!(vram_gb >= 0) || vram_gb > 1e5) return make_error("--vram must be in [0, 100000] GB, got ", vram_gb);
  if (!(ram_gb > 0) || ram_gb > 1e6) return make_error("--ram must be in (0, 1000000] GB, got ", ram_gb);
  if (!(bandwidth_gbs > 0) || bandwidth_gbs > 1e5)
    return make_error("--bandwidth must be in (0, 100000] GB/s, got ", bandwidth_gbs);
  if (n_gpus < 1 || n_gpus > 64) return make_error("--gpus must be in [1, 64], got ", n_gpus);
  DeviceProfile d;
  d.name = "custom";
  d.ram_bytes = uint64_t(ram_gb * kGB);
  d.cpu_threads = cpu_threads > 0 ? cpu_threads : 4;
  d.memory_source = d.bandwidth_source = "given";
  std::ostringstream desc;
  if (vram_gb > 0) {
    d.n_gpus = n_gpus;
    // A custom GPU: the given memory and bandwidth, T4-like compute per GB/s.
    d.gpu = {"custom GPU", uint64_t(vram_gb * kGB), bandwidth_gbs, bandwidth_gbs * 0.2, 0.55, 0.25};
    d.cpu_bandwidth_gbs = 15;
    desc << n_gpus << "x GPU of " << vram_gb << " GB at " << bandwidth_gbs << " GB/s, " << ram_gb << " GB RAM";
  } else {
    d.cpu_bandwidth_gbs = bandwidth_gbs;
    desc << "CPU: " << ram_gb << " GB RAM at " << bandwidth_gbs << " GB/s";
  }
  d.cpu_nominal_gflops = nominal_cpu_gflops(d.cpu_threads, 2.5);
  d.description = desc.str();
  return d;
}

}  // namespace dhi::planner
