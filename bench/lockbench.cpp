// lockbench: ft_weave against its peers, every scenario for every peer in one
// process, in the style of CPython's Tools/lockbench (fixed-duration runs of
// many threads, per-thread acquisition counts).
//
//   lockbench [--smoke] [--out FILE] [--duration-ms N] [--reps N] [--only SCENARIO]
//             [--peer NAME]   (only peers whose name contains NAME: for profiling)
//
// Scenarios: uncontended, contended, pingpong, manypark, hotbucket, rwlock,
// churn, regpair, event, cond, profile (the contention profile's cost), debug.
// Output: one CSV row per (scenario, peer, threads, workload) with the median
// of --reps repetitions, plus '#'-prefixed lines describing the machine. A
// self-check (the shared counter equals the sum of the acquisitions) makes
// the process exit non-zero when a lock let two threads in; nothing else is
// asserted: the numbers are reported, not judged.
//
// Google Benchmark is not used: its threaded runs neither take a fixed
// duration across peers nor report per-thread counts, and one driver keeps
// one CSV schema for all scenarios (the .NET runner writes the same one).

#include "handoff.h"
#include "peers/peers.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  bool smoke = false;
  int duration_ms = 300;  // per contended/rw run
  int reps = 3;
  std::string out;
  std::string only;
  std::string peer;  // run only the peers whose name contains this (for profiling)
  // rwlock: time every write's lock() for the longest-writer-wait column. Off
  // (--no-writer-wait) for previous.py, whose previous build's harness timed
  // nothing: two clock reads per write (26 ns each here) cost about 17% of the
  // one-thread figure.
  bool writer_wait = true;
};
Options opt;
std::atomic<int> failures{0};
FILE *csv = nullptr;

int64_t ns_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

// One unit of "work": a 32-bit LCG step the compiler cannot fold (the Rust
// peer and the .NET runner use the same step).
inline uint32_t work(uint32_t x, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    asm volatile("" : "+r"(x));
  }
  return x;
}

void row(const char *scenario, const std::string &peer, int threads, const std::string &workload, double value,
         const char *unit, uint64_t min_acq = 0, uint64_t max_acq = 0) {
  std::printf("%-12s %-28s %3d %-8s %14.3f %-10s", scenario, peer.c_str(), threads, workload.c_str(), value, unit);
  if (max_acq != 0) {
    std::printf(" min/max per thread %llu/%llu", (unsigned long long)min_acq, (unsigned long long)max_acq);
  }
  std::printf("\n");
  std::fflush(stdout);
  if (csv != nullptr) {
    std::fprintf(csv, "%s,%s,%d,%s,%.6g,%s,%llu,%llu\n", scenario, peer.c_str(), threads, workload.c_str(), value,
                 unit, (unsigned long long)min_acq, (unsigned long long)max_acq);
    std::fflush(csv);
  }
}

bool want(const char *scenario) { return opt.only.empty() || opt.only == scenario; }
bool want_peer(const char *name) { return opt.peer.empty() || std::strstr(name, opt.peer.c_str()) != nullptr; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- machine ------------------------------------------------------------

// A comment line of the results: on stdout and in the CSV (report.py shows
// them under "Machine and run").
void note(const char *text) {
  std::fputs(text, stdout);
  if (csv != nullptr) {
    std::fputs(text, csv);
  }
}

void machine_info() {
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  struct utsname u {};
  uname(&u);
  std::string model = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  unsigned cores = std::thread::hardware_concurrency();
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "# machine: cores=%u cpu=%s kernel=%s %s\n# load at start: %.2f %.2f %.2f (1, 5, 15 min)%s\n", cores,
                model.c_str(), u.sysname, u.release, load[0], load[1], load[2],
                load[0] > 1.0 ? "  WARNING: load > 1, numbers are not trustworthy" : "");
  note(buf);
  if (csv != nullptr) {
    std::fprintf(csv, "scenario,peer,threads,workload,value,unit,min_acq,max_acq\n");
  }
}

void load_at_end() {
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  char buf[128];
  std::snprintf(buf, sizeof buf, "# load at end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  note(buf);
}

// The cache-line hand-off of this moment (handoff.h), noted in the results
// before and after the scenarios whose figures follow it (the RW notes of
// docs/benchmarks.md).
void handoff_note(const char *when) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "# cache-line hand-off between two threads (%s): %.0f ns\n", when,
                ftw_handoff_ns(opt.smoke ? 2000 : 200000));
  note(buf);
}

// ---- 1. uncontended lock+unlock -------------------------------------------

// One peer's uncontended loop: nanoseconds per lock+unlock pair over `iters`.
struct UncontendedPeer {
  const char *name;
  std::function<double(uint64_t iters)> run;
};

template <class L>
UncontendedPeer uncontended_peer() {
  // One lock per peer for the whole scenario (created on first use).
  return {L::name, [lock = std::shared_ptr<L>(new L)](uint64_t iters) {
            auto t0 = Clock::now();
            for (uint64_t i = 0; i < iters; i++) {
              lock->lock();
              lock->unlock();
            }
            return (double)ns_since(t0) / (double)iters;
          }};
}

// Batches of 2 M pairs (~20 ms), the peers interleaved batch by batch, the
// median of 15 batches per peer: a batch in which the thread lost its core
// is an outlier the median drops, and a busy spell hits every peer alike.
//
// A second thread stays alive (asleep) for the whole scenario: glibc turns
// pthread_mutex_lock/unlock into plain stores while a process has a single
// thread, and every lock matters only in multi-threaded programs.
void uncontended(const std::vector<UncontendedPeer> &all, const char *scenario = "uncontended") {
  std::mutex idle_mutex;
  std::condition_variable idle_cv;
  bool idle_stop = false;
  std::thread idle([&] {
    std::unique_lock<std::mutex> g(idle_mutex);
    idle_cv.wait(g, [&] { return idle_stop; });
  });
  struct StopIdle {
    std::mutex &m;
    std::condition_variable &cv;
    bool &stop;
    std::thread &t;
    ~StopIdle() {
      {
        std::lock_guard<std::mutex> g(m);
        stop = true;
      }
      cv.notify_one();
      t.join();
    }
  } stop_idle{idle_mutex, idle_cv, idle_stop, idle};
  const uint64_t iters = opt.smoke ? 100000 : 2000000;
  const int batches = opt.smoke ? 1 : 15;
  std::vector<const UncontendedPeer *> peers;
  for (const UncontendedPeer &p : all) {
    if (want_peer(p.name)) {
      peers.push_back(&p);
      p.run(iters / 4);  // warm-up
    }
  }
  std::vector<std::vector<double>> ns(peers.size());
  for (int b = 0; b < batches; b++) {
    for (size_t i = 0; i < peers.size(); i++) {
      ns[i].push_back(peers[i]->run(iters));
    }
  }
  for (size_t i = 0; i < peers.size(); i++) {
    row(scenario, peers[i]->name, 1, "-", median(ns[i]), "ns/op");
  }
}

// ---- 2. contended throughput ----------------------------------------------

struct Workload {
  const char *name;
  uint32_t in, out;
};
const Workload workloads[] = {{"tiny", 1, 1}, {"small", 10, 50}};
const int thread_counts[] = {1, 2, 4, 8, 16};

struct alignas(128) PaddedCount {
  std::atomic<uint64_t> n{0};
};

struct RunResult {
  double per_s;
  uint64_t min_acq, max_acq;
  double max_wait_us = -1;  // rwlock: the longest writer wait of the run (-1: not measured)
};

// Starts `threads` threads running body(t, stop) after a common start line;
// returns the elapsed nanoseconds between start and stop.
int64_t run_threads(int threads, int duration_ms, const std::function<void(int, std::atomic<bool> &)> &body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
        std::this_thread::yield();
      }
      body(t, stop);
    });
  }
  while (ready.load() != threads) {
    std::this_thread::yield();
  }
  auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::milliseconds(duration_ms));
  stop.store(true, std::memory_order_relaxed);
  int64_t elapsed = ns_since(t0);
  for (auto &t : ts) {
    t.join();
  }
  return elapsed;
}

RunResult summarise(const std::vector<uint64_t> &counts, int64_t elapsed_ns) {
  uint64_t total = 0;
  for (uint64_t c : counts) {
    total += c;
  }
  return {(double)total * 1e9 / (double)elapsed_ns, *std::min_element(counts.begin(), counts.end()),
          *std::max_element(counts.begin(), counts.end())};
}

void report_median(const char *scenario, const std::string &peer, int threads, const char *workload,
                   std::vector<RunResult> runs) {
  std::sort(runs.begin(), runs.end(), [](const RunResult &a, const RunResult &b) { return a.per_s < b.per_s; });
  const RunResult &m = runs[runs.size() / 2];
  row(scenario, peer, threads, workload, m.per_s, "ops/s", m.min_acq, m.max_acq);
  double worst = -1;
  for (const RunResult &r : runs) {
    worst = std::max(worst, r.max_wait_us);
  }
  if (worst >= 0) {
    // The worst of the repetitions (not the median): starvation shows as
    // one long wait.
    row((std::string(scenario) + "_wait").c_str(), peer, threads, workload, worst, "us");
  }
}

template <class L>
RunResult contended_once(int threads, const Workload &w, int duration_ms) {
  struct alignas(128) Shared {
    L lock;
    uint64_t counter = 0;
    uint32_t x = 1;
  };
  auto sh = std::make_unique<Shared>();
  std::vector<PaddedCount> counts(threads);
  int64_t elapsed = run_threads(threads, duration_ms, [&](int t, std::atomic<bool> &stop) {
    uint32_t local = (uint32_t)t + 1;
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      sh->lock.lock();
      sh->counter++;
      sh->x = work(sh->x, w.in);
      sh->lock.unlock();
      local = work(local, w.out);
      n++;
    }
    asm volatile("" ::"r"(local));
    counts[t].n.store(n, std::memory_order_relaxed);
  });
  std::vector<uint64_t> c;
  uint64_t total = 0;
  for (auto &pc : counts) {
    c.push_back(pc.n.load());
    total += c.back();
  }
  if (total != sh->counter) {
    std::fprintf(stderr, "lockbench: %s lost updates: counter %llu, acquisitions %llu\n", L::name,
                 (unsigned long long)sh->counter, (unsigned long long)total);
    failures++;
  }
  return summarise(c, elapsed);
}

// One contended peer: its name and one timed run of a configuration.
struct ThreadedPeer {
  const char *name;
  std::function<RunResult(int threads, const Workload &w, int duration_ms)> run;
};

template <class L>
ThreadedPeer mutex_peer() {
  return {L::name, [](int threads, const Workload &w, int ms) { return contended_once<L>(threads, w, ms); }};
}

RunResult contended_pl_native_once(int threads, const Workload &w, int ms) {
  std::vector<uint64_t> counts(threads);
  uint64_t elapsed = ftw_pl_native_contended(threads, ms, w.in, w.out, counts.data());
  return summarise(counts, (int64_t)elapsed);
}

// For each configuration, the repetitions of all peers are interleaved
// (peer A, B, C, A, B, C, ...): on a shared machine the load drifts over
// seconds, and interleaving spreads that drift over every peer alike
// instead of charging it to whichever peer ran during a busy spell.
void run_interleaved(const char *scenario, const std::vector<ThreadedPeer> &all, const Workload *ws, size_t nws) {
  std::vector<const ThreadedPeer *> peers;
  for (const ThreadedPeer &p : all) {
    if (want_peer(p.name)) {
      peers.push_back(&p);
    }
  }
  for (size_t wi = 0; wi < nws; wi++) {
    const Workload &w = ws[wi];
    for (int threads : thread_counts) {
      std::vector<std::vector<RunResult>> runs(peers.size());
      for (const ThreadedPeer *p : peers) {
        p->run(threads, w, opt.smoke ? 2 : 30);  // warm-up
      }
      for (int r = 0; r < opt.reps; r++) {
        for (size_t i = 0; i < peers.size(); i++) {
          runs[i].push_back(peers[i]->run(threads, w, opt.duration_ms));
        }
      }
      for (size_t i = 0; i < peers.size(); i++) {
        report_median(scenario, peers[i]->name, threads, w.name, runs[i]);
      }
    }
  }
}

// ---- latency regimes --------------------------------------------------------

// Wake-up latencies on this kind of machine (a VM with few vCPUs) have two
// regimes: a wake that reaches a CPU that is still awake (in its idle loop,
// or a thread polling) takes about a microsecond; one that reaches a vCPU
// that has halted goes through the hypervisor and takes 10-20 us. Which one a
// run lands in depends on timing (a few hundred ns more on the response path
// are enough to tip a futex ping-pong into the slow one), so a latency row is
// only comparable to a peer's when both ran in the same regime. Every
// latency scenario therefore runs its peers interleaved, run by run, and
// reports for each peer the median over runs of the run's median per-round
// time, then in `regimes` rows how many runs fell in each regime (a run is
// fast when its median is below kFastWakeUs per wake it waits for: a round
// trip waits for two) and the median of each.
constexpr double kFastWakeUs = 2.5;

struct LatencyPeer {
  std::string name;
  std::function<double(uint32_t rounds)> run;  // one run: the median per-round time in us
};

void latency_rows(const char *scenario, const std::string &peer, const std::vector<double> &runs, const char *unit,
                  int wakes) {
  row(scenario, peer, 2, "-", median(runs), unit);
  std::vector<double> fast, slow;
  for (double us : runs) {
    (us < kFastWakeUs * wakes ? fast : slow).push_back(us);
  }
  const std::string sc(scenario);
  row("regimes", peer, 2, sc + ":fast", (double)fast.size(), "runs");
  row("regimes", peer, 2, sc + ":slow", (double)slow.size(), "runs");
  if (!fast.empty()) {
    row("regimes", peer, 2, sc + ":fast-median", median(fast), unit);
  }
  if (!slow.empty()) {
    row("regimes", peer, 2, sc + ":slow-median", median(slow), unit);
  }
}

// wakes: how many wakes one measured round waits for (a round trip: 2).
void latency_interleaved(const char *scenario, const char *unit, const std::vector<LatencyPeer> &all, uint32_t rounds,
                         int wakes) {
  std::vector<const LatencyPeer *> peers;
  for (const LatencyPeer &p : all) {
    if (want_peer(p.name.c_str())) {
      peers.push_back(&p);
    }
  }
  for (const LatencyPeer *p : peers) {
    p->run(std::max<uint32_t>(rounds / 10, 2));  // warm-up
  }
  const int reps = opt.smoke ? opt.reps : std::max(opt.reps, 5);
  std::vector<std::vector<double>> runs(peers.size());
  for (int r = 0; r < reps; r++) {
    for (size_t i = 0; i < peers.size(); i++) {
      runs[i].push_back(peers[i]->run(rounds));
    }
  }
  for (size_t i = 0; i < peers.size(); i++) {
    latency_rows(scenario, peers[i]->name, runs[i], unit, wakes);
  }
}

// ---- 3. park/unpark ping-pong -----------------------------------------------

// Two threads pass a turn through one word; each waits by parking on it
// (no spinning), so every half round trip is one sleep and one wake. Each
// round trip is timed on its own and the median kept: on a shared 2-core
// machine a few rounds that wait for a core would otherwise dominate a mean.
// The Rust-native loops (lib.rs) and the .NET runner measure the same way.
template <class P>
double pingpong_once(uint32_t rounds) {
  alignas(64) static uint32_t turn;
  turn = 0;
  std::thread peer([rounds] {
    for (uint32_t i = 0; i < rounds; i++) {
      while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) == 0) {
        P::wait_while(&turn, 0);
      }
      __atomic_store_n(&turn, 0, __ATOMIC_RELEASE);
      P::wake(&turn);
    }
  });
  std::vector<double> rt(rounds);
  for (uint32_t i = 0; i < rounds; i++) {
    auto t0 = Clock::now();
    __atomic_store_n(&turn, 1, __ATOMIC_RELEASE);
    P::wake(&turn);
    while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) == 1) {
      P::wait_while(&turn, 1);
    }
    rt[i] = (double)ns_since(t0) / 1000.0;
  }
  peer.join();
  return median(rt);
}

template <class P>
LatencyPeer pingpong_peer() {
  return {P::name, [](uint32_t rounds) { return pingpong_once<P>(rounds); }};
}

void pingpong() {
  const std::vector<LatencyPeer> peers = {
      pingpong_peer<peers::WeavePark>(), pingpong_peer<peers::FutexPark>(),
      {"parking_lot_core (Rust loop)",
       [](uint32_t rounds) { return (double)ftw_pl_native_park_pingpong(rounds) / 1000.0; }}};
  latency_interleaved("pingpong", "us/rt", peers, opt.smoke ? 200 : 20000, 2);
}

// ---- 3b. many threads parked on many addresses -----------------------------
//
// `manypark`: 1,000 threads and 10,000 addresses (10 words per thread). The
// threads form a ring through which 250 tokens travel: a thread waits for its
// next token by parking on one of its 10 words (the k-th token it receives
// arrives on word k % 10), and passes it on by incrementing the next thread's
// word and calling wake() on it. So about 750 threads are parked at any time,
// spread over up to 10,000 addresses, while the other 250 park and unpark:
// every bucket of the lot holds waiters of many addresses. Rows:
//   handoff  token hand-offs per second (min/max: per-thread hand-offs)
//   unpark   median wake() call, us (the waker's bucket-lock section)
//   unpark99 99th percentile of the wake() call, us
//   unparkmax longest wake() call, us: a waker that the bucket lock starved
//
// `hotbucket`: N threads call wake() on one address nobody waits on, so each
// call is one bucket-lock section: the bucket lock's throughput (ops/s), its
// fairness (min/max: per-thread acquisitions) and the worst wait (max us).

template <class P>
void manypark_once(int nthreads, int per_thread, int tokens, std::vector<double> &out_ops,
                   std::vector<double> &out_lat, uint64_t &min_acq, uint64_t &max_acq) {
  const int naddr = nthreads * per_thread;
  std::unique_ptr<uint32_t[]> words(new uint32_t[naddr]());
  // Word k of thread t: interleaved, so neighbouring words belong to different threads.
  auto word = [&](int t, uint64_t k) { return &words[(size_t)(k % (uint64_t)per_thread) * nthreads + t]; };
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::atomic<int> ready{0};
  struct alignas(64) PerThread {
    uint64_t handoffs = 0;
    std::vector<float> lat;
  };
  std::vector<PerThread> per(nthreads);
  // Initial tokens, spread evenly: a holder's initial token is its arrival
  // 0, so its predecessor's sends are its arrivals 1, 2, ...
  std::vector<uint64_t> first_arrival(nthreads, 0);
  for (int i = 0; i < tokens; i++) {
    int t = (int)((int64_t)i * nthreads / tokens);
    __atomic_fetch_add(word(t, 0), 1, __ATOMIC_RELEASE);
    first_arrival[t] = 1;
  }
  std::vector<std::thread> threads;
  threads.reserve(nthreads);
  for (int t = 0; t < nthreads; t++) {
    threads.emplace_back([&, t] {
      PerThread &me = per[t];
      me.lat.reserve(1 << 14);
      int next = (t + 1) % nthreads;
      uint64_t received = 0, sent = first_arrival[next];
      uint32_t one = 1;
      P::wait_while(&one, 0);  // first call into the library (attach) before the clock starts
      ready.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
        uint32_t *w = word(t, received);
        uint32_t v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
        if (v == 0) {
          P::wait_while(w, 0);
          continue;
        }
        __atomic_fetch_sub(w, 1, __ATOMIC_ACQ_REL);
        received++;
        uint32_t *to = word(next, sent++);
        __atomic_fetch_add(to, 1, __ATOMIC_RELEASE);
        auto t0 = Clock::now();
        P::wake(to);
        if (measuring.load(std::memory_order_relaxed)) {
          me.lat.push_back((float)ns_since(t0) / 1000.0f);
          me.handoffs++;
        }
      }
    });
  }
  while (ready.load() != nthreads) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(opt.smoke ? 10 : 100));  // warm-up
  measuring.store(true);
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(opt.smoke ? 20 : opt.duration_ms * 3));
  measuring.store(false);
  double secs = (double)ns_since(t0) / 1e9;
  stop.store(true);
  // Release every sleeper: a non-zero word makes its park return AGAIN or
  // the wake below reaches it (park validates under the bucket lock).
  for (int i = 0; i < naddr; i++) {
    __atomic_fetch_add(&words[i], 1u << 20, __ATOMIC_RELEASE);
    P::wake_all(&words[i]);
  }
  for (auto &th : threads) {
    th.join();
  }
  uint64_t total = 0;
  min_acq = UINT64_MAX;
  max_acq = 0;
  for (auto &p : per) {
    total += p.handoffs;
    min_acq = std::min(min_acq, p.handoffs);
    max_acq = std::max(max_acq, p.handoffs);
    out_lat.insert(out_lat.end(), p.lat.begin(), p.lat.end());
  }
  out_ops.push_back((double)total / secs);
}

template <class P>
void manypark() {
  if (!want_peer(P::name)) {
    return;
  }
  const int nthreads = opt.smoke ? 50 : 1000;
  const int tokens = nthreads / 4;
  std::vector<double> ops, lat;
  uint64_t mn = 0, mx = 0, worst_spread_min = UINT64_MAX, worst_spread_max = 0;
  for (int r = 0; r < opt.reps; r++) {
    manypark_once<P>(nthreads, 10, tokens, ops, lat, mn, mx);
    worst_spread_min = std::min(worst_spread_min, mn);
    worst_spread_max = std::max(worst_spread_max, mx);
  }
  row("manypark", P::name, nthreads, "handoff", median(ops), "ops/s", worst_spread_min, worst_spread_max);
  if (lat.empty()) {
    return;
  }
  std::sort(lat.begin(), lat.end());
  row("manypark", P::name, nthreads, "unpark", lat[lat.size() / 2], "us");
  row("manypark", P::name, nthreads, "unpark99", lat[lat.size() * 99 / 100], "us");
  row("manypark", P::name, nthreads, "unparkmax", lat.back(), "us");
}

template <class P>
void hotbucket_once(int nthreads, std::vector<double> &ops, uint64_t &min_acq, uint64_t &max_acq, double &worst) {
  alignas(64) static uint32_t hot;
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  struct alignas(64) PerThread {
    uint64_t n = 0;
    int64_t worst_ns = 0;
  };
  std::vector<PerThread> per(nthreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; t++) {
    threads.emplace_back([&, t] {
      P::wake(&hot);
      ready.fetch_add(1);
      while (ready.load() != nthreads) {
        std::this_thread::yield();
      }
      PerThread &me = per[t];
      while (!stop.load(std::memory_order_relaxed)) {
        auto t0 = Clock::now();
        P::wake(&hot);
        int64_t d = ns_since(t0);
        me.worst_ns = std::max(me.worst_ns, d);
        me.n++;
      }
    });
  }
  while (ready.load() != nthreads) {
    std::this_thread::yield();
  }
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(opt.duration_ms));
  stop.store(true);
  double secs = (double)ns_since(t0) / 1e9;
  for (auto &th : threads) {
    th.join();
  }
  uint64_t total = 0;
  min_acq = UINT64_MAX;
  max_acq = 0;
  for (auto &p : per) {
    total += p.n;
    min_acq = std::min(min_acq, p.n);
    max_acq = std::max(max_acq, p.n);
    worst = std::max(worst, (double)p.worst_ns / 1000.0);
  }
  ops.push_back((double)total / secs);
}

template <class P>
void hotbucket(int nthreads) {
  if (!want_peer(P::name)) {
    return;
  }
  std::vector<double> ops;
  uint64_t mn = UINT64_MAX, mx = 0;
  double worst = 0;
  for (int r = 0; r < opt.reps; r++) {
    uint64_t a = 0, b = 0;
    hotbucket_once<P>(nthreads, ops, a, b, worst);
    mn = std::min(mn, a);
    mx = std::max(mx, b);
  }
  row("hotbucket", P::name, nthreads, "-", median(ops), "ops/s", mn, mx);
  row("hotbucket", P::name, nthreads, "worst", worst, "us");
}

// ---- 4. RW mutex, 95% reads ------------------------------------------------

// The workload's `in` is the writes per 1,000 operations, `out` the units of
// work between operations.
template <class L>
RunResult rw_once(int threads, const Workload &wl, int duration_ms) {
  struct alignas(128) Shared {
    L lock;
    uint64_t data[4] = {0, 0, 0, 0};
  };
  auto sh = std::make_unique<Shared>();
  std::vector<PaddedCount> counts(threads);
  std::atomic<uint64_t> writes{0};
  std::atomic<int64_t> max_wait_ns{0};
  int64_t elapsed = run_threads(threads, duration_ms, [&](int t, std::atomic<bool> &stop) {
    uint32_t rng = (uint32_t)t * 7919u + 1u;
    uint64_t n = 0, w = 0, sum = 0;
    int64_t my_max_wait = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      rng = rng * 1103515245u + 12345u;
      if ((rng >> 16) % 1000 < wl.in) {
        // Every peer pays the same two clock reads per write (5% of the
        // operations), unless --no-writer-wait: how long a writer waited, to
        // show that readers do not starve writers.
        if (opt.writer_wait) {
          auto t0 = Clock::now();
          sh->lock.lock();
          my_max_wait = std::max(my_max_wait, ns_since(t0));
        } else {
          sh->lock.lock();
        }
        for (uint64_t &d : sh->data) {
          d++;
        }
        sh->lock.unlock();
        w++;
      } else {
        sh->lock.rlock();
        uint64_t a = sh->data[0], b = sh->data[3];
        sh->lock.runlock();
        if (a != b) {
          failures++;  // a torn read: a writer ran beside a reader
        }
        sum += a;
      }
      rng = work(rng, wl.out);
      n++;
    }
    asm volatile("" ::"r"(sum));
    writes.fetch_add(w);
    int64_t seen = max_wait_ns.load();
    while (my_max_wait > seen && !max_wait_ns.compare_exchange_weak(seen, my_max_wait)) {
    }
    counts[t].n.store(n, std::memory_order_relaxed);
  });
  if (sh->data[0] != writes.load()) {
    std::fprintf(stderr, "lockbench: %s rw lost writes\n", L::name);
    failures++;
  }
  std::vector<uint64_t> c;
  for (auto &pc : counts) {
    c.push_back(pc.n.load());
  }
  RunResult result = summarise(c, elapsed);
  result.max_wait_us = opt.writer_wait ? (double)max_wait_ns.load() / 1000.0 : -1;
  return result;
}

template <class L>
ThreadedPeer rw_peer() {
  return {L::name, [](int threads, const Workload &w, int ms) { return rw_once<L>(threads, w, ms); }};
}

// 95% reads (the committed tables), and 99.9% reads (where a reader bias
// has writes rare enough to pay off).
const Workload read95[] = {{"read95", 50, 10}, {"read999", 1, 10}};

// ---- 5. thread create + exit -------------------------------------------------

weave_local void *tls_a, *tls_b, *tls_c, *tls_d;
std::atomic<uint64_t> destructor_runs{0};
void count_destructor(void *) { destructor_runs.fetch_add(1, std::memory_order_relaxed); }

void *plain_thread(void *) { return nullptr; }

void *weave_call_thread(void *) {
  (void)weave_thread_id();  // first call into the library: attaches the thread
  return nullptr;
}

void *weave_destructors_thread(void *) {
  weave_register_destructor(&tls_a, count_destructor);
  weave_register_destructor(&tls_b, count_destructor);
  weave_register_destructor(&tls_c, count_destructor);
  weave_register_destructor(&tls_d, count_destructor);
  return nullptr;
}

#ifdef FTW_BENCH_FT_UTILS
// ft_utils' weave (bench/CMakeLists.txt, FT_WEAVE_BENCH_FT_UTILS_DIR): the code
// ft_weave replaces, its public names prefixed ftu_.
extern "C" {
int ftu_weave_init(void);
void ftu_register_wvls_destructor(void **var, void (*destructor)(void *));
int ftu_unregister_wvls_destructor(void **var);
}
constexpr bool have_ft_utils = true;

// Creates ft_utils' destructor key, once (what importing its module does).
bool ft_utils_ready() {
  static const bool ok = ftu_weave_init() == 0;
  if (!ok) {
    std::fprintf(stderr, "lockbench: ft_utils weave: creating its destructor key failed\n");
    failures++;
  }
  return ok;
}

void *ft_utils_destructors_thread(void *) {
  ftu_register_wvls_destructor(&tls_a, count_destructor);
  ftu_register_wvls_destructor(&tls_b, count_destructor);
  ftu_register_wvls_destructor(&tls_c, count_destructor);
  ftu_register_wvls_destructor(&tls_d, count_destructor);
  return nullptr;
}
#else
constexpr bool have_ft_utils = false;
#endif

pthread_key_t keys[4];
void *pthread_keys_thread(void *) {
  for (pthread_key_t k : keys) {
    pthread_setspecific(k, &keys[0]);
  }
  return nullptr;
}

double churn_once(void *(*fn)(void *), int n) {
  auto t0 = Clock::now();
  for (int i = 0; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, nullptr, fn, nullptr) != 0) {
      std::fprintf(stderr, "lockbench: pthread_create failed\n");
      failures++;
      return 0;
    }
    pthread_join(t, nullptr);
  }
  return (double)ns_since(t0) / n / 1000.0;
}

void churn() {
  for (pthread_key_t &k : keys) {
    pthread_key_create(&k, count_destructor);
  }
  const int n = opt.smoke ? 50 : 3000;
  struct Case {
    const char *name;
    void *(*fn)(void *);
    int destructors;
  };
  std::vector<Case> cases = {{"plain create+join", plain_thread, 0},
                             {"ft_weave 4 destructors", weave_destructors_thread, 4},
                             {"ft_weave 1 call (no destructor)", weave_call_thread, 0},
                             {"pthread keys 4 destructors", pthread_keys_thread, 4}};
#ifdef FTW_BENCH_FT_UTILS
  if (!ft_utils_ready()) {
    return;
  }
  cases.push_back({"ft_utils weave 4 destructors", ft_utils_destructors_thread, 4});
#else
  std::printf("# churn: ft_utils weave skipped (configure with FT_WEAVE_BENCH_FT_UTILS_DIR)\n");
#endif
  // Cases interleaved within each repetition, as run_interleaved does.
  std::vector<std::vector<double>> us(cases.size());
  uint64_t expected = 0;
  for (const Case &c : cases) {
    churn_once(c.fn, n / 10);
    expected += (uint64_t)c.destructors * (uint64_t)(n / 10 + n * opt.reps);
  }
  for (int r = 0; r < opt.reps; r++) {
    for (size_t i = 0; i < cases.size(); i++) {
      us[i].push_back(churn_once(cases[i].fn, n));
    }
  }
  for (size_t i = 0; i < cases.size(); i++) {
    row("churn", cases[i].name, 1, "-", median(us[i]), "us/thread");
  }
  if (destructor_runs.load() != expected) {
    std::fprintf(stderr, "lockbench: %llu destructor runs, expected %llu\n",
                 (unsigned long long)destructor_runs.load(), (unsigned long long)expected);
    failures++;
  }
}

// ---- 5b. register + unregister pair --------------------------------------------

// One worker thread (not main: ft_weave's main thread also arms the CPython
// at-exit hook on every registration) registers and unregisters one
// destructor in a loop, ft_weave and ft_utils batch by batch interleaved.
// The destructor is in the program, so ft_weave takes no module pin.
struct PairArgs {
  std::vector<std::vector<double>> ns;
};

template <bool FtUtils>
double pair_batch(uint64_t iters) {
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < iters; i++) {
#ifdef FTW_BENCH_FT_UTILS
    if constexpr (FtUtils) {
      ftu_register_wvls_destructor(&tls_a, count_destructor);
      if (ftu_unregister_wvls_destructor(&tls_a) != 1) {
        failures++;
      }
      continue;
    }
#endif
    weave_register_destructor(&tls_a, count_destructor);
    if (weave_unregister_destructor(&tls_a) != 1) {
      failures++;
    }
  }
  return (double)ns_since(t0) / (double)iters;
}

void *pair_thread(void *arg) {
  auto *a = static_cast<PairArgs *>(arg);
  const uint64_t iters = opt.smoke ? 10000 : 2000000;
  const int batches = opt.smoke ? 1 : 15;
  pair_batch<false>(iters / 10);
  if (have_ft_utils) {
    pair_batch<true>(iters / 10);
  }
  for (int b = 0; b < batches; b++) {
    a->ns[0].push_back(pair_batch<false>(iters));
    if (have_ft_utils) {
      a->ns[1].push_back(pair_batch<true>(iters));
    }
  }
  return nullptr;
}

void regpair() {
#ifdef FTW_BENCH_FT_UTILS
  if (!ft_utils_ready()) {
    return;
  }
#endif
  PairArgs a;
  a.ns.resize(2);
  pthread_t t;
  if (pthread_create(&t, nullptr, pair_thread, &a) != 0) {
    std::fprintf(stderr, "lockbench: pthread_create failed\n");
    failures++;
    return;
  }
  pthread_join(t, nullptr);
  row("regpair", "ft_weave", 1, "-", median(a.ns[0]), "ns/pair");
  if (have_ft_utils) {
    row("regpair", "ft_utils weave", 1, "-", median(a.ns[1]), "ns/pair");
  } else {
    std::printf("# regpair: ft_utils weave skipped (configure with FT_WEAVE_BENCH_FT_UTILS_DIR)\n");
  }
}

// ---- 6a. event notify -> waiter wake latency -------------------------------

// A waiter thread waits on event i; the main thread gives it time to park
// (200 us), reads the clock and notifies; the waiter reads the clock on
// waking. Latency = waiter's time - notifier's time (one monotonic clock).
template <class E>
double event_once(uint32_t n) {
  std::unique_ptr<E[]> events(new E[n]);
  std::vector<int64_t> woke(n), sent(n);
  std::atomic<uint32_t> done{0};
  auto base = Clock::now();
  std::thread waiter([&] {
    for (uint32_t i = 0; i < n; i++) {
      events[i].wait();
      woke[i] = ns_since(base);
      done.store(i + 1, std::memory_order_release);
    }
  });
  for (uint32_t i = 0; i < n; i++) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    sent[i] = ns_since(base);
    events[i].notify();
    while (done.load(std::memory_order_acquire) != i + 1) {
      std::this_thread::yield();
    }
  }
  waiter.join();
  std::vector<double> us;
  for (uint32_t i = 0; i < n; i++) {
    us.push_back((double)(woke[i] - sent[i]) / 1000.0);
  }
  return median(us);
}

template <class E>
LatencyPeer event_peer() {
  return {E::name, [](uint32_t n) { return event_once<E>(n); }};
}

void event_latency() {
  const std::vector<LatencyPeer> peers = {event_peer<peers::WeaveEvent>(), event_peer<peers::FutexEvent>(),
                                          event_peer<peers::PthreadEvent>(), event_peer<peers::AbslEvent>()};
  latency_interleaved("event", "us", peers, opt.smoke ? 20 : 300, 1);
}

// ---- 6b. condition-variable ping-pong ---------------------------------------

template <class C>
double cond_once(uint32_t rounds) {
  auto c = std::make_unique<C>();
  int turn = 0;
  std::thread peer([&] {
    for (uint32_t i = 0; i < rounds; i++) {
      c->lock();
      while (turn != 1) {
        c->wait();
      }
      turn = 0;
      c->signal();
      c->unlock();
    }
  });
  std::vector<double> rt(rounds);
  for (uint32_t i = 0; i < rounds; i++) {
    auto t0 = Clock::now();
    c->lock();
    turn = 1;
    c->signal();
    while (turn != 0) {
      c->wait();
    }
    c->unlock();
    rt[i] = (double)ns_since(t0) / 1000.0;
  }
  peer.join();
  return median(rt);
}

template <class C>
LatencyPeer cond_peer() {
  return {C::name, [](uint32_t rounds) { return cond_once<C>(rounds); }};
}

void cond_pingpong() {
  const std::vector<LatencyPeer> peers = {
      cond_peer<peers::WeaveCond>(), cond_peer<peers::PthreadCond>(), cond_peer<peers::StdCond>(),
      cond_peer<peers::AbslCond>(),
      {"parking_lot (Rust loop)",
       [](uint32_t rounds) { return (double)ftw_pl_native_cond_pingpong(rounds) / 1000.0; }}};
  latency_interleaved("cond", "us/rt", peers, opt.smoke ? 200 : 20000, 2);
}

// ---- 7. contention profile cost ---------------------------------------------

// ft_weave's contended throughput with the contention profile off and on
// (every wait recorded, and 1 in 10), interleaved run by run; a "ratio" row
// per configuration gives on / off (docs/diagnostics.md quotes it).
void profile_cost() {
  struct Mode {
    const char *name;
    int rate;  // 0: off
  };
  const Mode modes[] = {{"ft_weave (profile off)", 0}, {"ft_weave (profile on 1/1)", 1}, {"ft_weave (profile on 1/10)", 10}};
  int previous_rate = weave_profile_set_rate(1);
  for (const Workload &w : workloads) {
    for (int threads : {2, 4, 8}) {
      std::vector<std::vector<RunResult>> runs(std::size(modes));
      for (int r = -1; r < opt.reps; r++) {  // r == -1: warm-up
        for (size_t i = 0; i < std::size(modes); i++) {
          if (modes[i].rate != 0) {
            weave_profile_set_rate(modes[i].rate);
            weave_profile_start();
          }
          RunResult res = contended_once<peers::Weave>(threads, w, r < 0 ? (opt.smoke ? 2 : 30) : opt.duration_ms);
          if (modes[i].rate != 0) {
            weave_profile_stop();
          }
          if (r >= 0) {
            runs[i].push_back(res);
          }
        }
      }
      std::vector<double> medians;
      for (size_t i = 0; i < std::size(modes); i++) {
        report_median("profile", modes[i].name, threads, w.name, runs[i]);
        std::vector<double> v;
        for (const RunResult &x : runs[i]) {
          v.push_back(x.per_s);
        }
        medians.push_back(median(v));
      }
      for (size_t i = 1; i < std::size(modes); i++) {
        row("profile", std::string(modes[i].name) + " / off", threads, w.name, medians[i] / medians[0], "ratio");
      }
    }
  }
  weave_profile_set_rate(previous_rate > 0 ? previous_rate : 1);
}

// ---- debug mode: the cost of deadlock detection ----------------------------

// The mutex as a program compiled with -DFT_WEAVE_DEBUG gets it: every lock
// and unlock calls the checking export (weave_debug_mutex_*). Each variant
// sets the debug flags at the start of each of its runs, so that the runs of
// the variants can be interleaved: "off" is the routed call with debug mode
// off (what -DFT_WEAVE_DEBUG costs by itself), "on" is with
// WEAVE_DEBUG_ALL. The plain ft_weave peer (inline, debug off) is the
// baseline: the header's fast path is the same whatever the flags.
struct WeaveRouted {
  static constexpr const char *name = "ft_weave -DFT_WEAVE_DEBUG";
  weave_mutex_t m{};
  void lock() { weave_debug_mutex_lock(&m); }
  void unlock() { (void)weave_debug_mutex_unlock(&m); }
};

template <class L>
UncontendedPeer debug_uncontended_peer(const char *name, int flags) {
  UncontendedPeer inner = uncontended_peer<L>();
  return {name, [inner, flags](uint64_t iters) {
            (void)weave_debug_set(flags, nullptr, nullptr);
            double ns = inner.run(iters);
            (void)weave_debug_set(0, nullptr, nullptr);
            return ns;
          }};
}

template <class L>
ThreadedPeer debug_mutex_peer(const char *name, int flags) {
  return {name, [flags](int threads, const Workload &w, int ms) {
            (void)weave_debug_set(flags, nullptr, nullptr);
            RunResult r = contended_once<L>(threads, w, ms);
            (void)weave_debug_set(0, nullptr, nullptr);
            return r;
          }};
}

void debug_mode() {
  const std::vector<UncontendedPeer> solo = {
      debug_uncontended_peer<peers::Weave>("ft_weave inline (debug off)", 0),
      debug_uncontended_peer<WeaveRouted>("ft_weave routed (debug off)", 0),
      debug_uncontended_peer<WeaveRouted>("ft_weave routed (debug on)", WEAVE_DEBUG_ALL),
      debug_uncontended_peer<peers::WeaveExported>("ft_weave exported (debug off)", 0),
      debug_uncontended_peer<peers::WeaveExported>("ft_weave exported (debug on)", WEAVE_DEBUG_ALL)};
  uncontended(solo, "debug_uncontended");
  const std::vector<ThreadedPeer> contended = {
      debug_mutex_peer<peers::Weave>("ft_weave inline (debug off)", 0),
      debug_mutex_peer<WeaveRouted>("ft_weave routed (debug off)", 0),
      debug_mutex_peer<WeaveRouted>("ft_weave routed (debug on)", WEAVE_DEBUG_ALL)};
  run_interleaved("debug_contended", contended, workloads, std::size(workloads));
}

int usage() {
  std::fprintf(stderr,
               "usage: lockbench [--smoke] [--out FILE] [--duration-ms N] [--reps N] [--only SCENARIO] [--peer NAME]\n"
               "                 [--no-writer-wait]\n"
               "scenarios: uncontended contended pingpong manypark hotbucket rwlock churn regpair event cond profile debug\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
    const char *v = nullptr;
    if (a == "--smoke") {
      opt.smoke = true;
      opt.duration_ms = 10;
      opt.reps = 1;
    } else if (a == "--out" && (v = next()) != nullptr) {
      opt.out = v;
    } else if (a == "--duration-ms" && (v = next()) != nullptr) {
      opt.duration_ms = std::atoi(v);
    } else if (a == "--reps" && (v = next()) != nullptr) {
      opt.reps = std::max(1, std::atoi(v));
    } else if (a == "--only" && (v = next()) != nullptr) {
      opt.only = v;
    } else if (a == "--peer" && (v = next()) != nullptr) {
      opt.peer = v;
    } else if (a == "--no-writer-wait") {
      opt.writer_wait = false;
    } else {
      return usage();
    }
  }
  if (!opt.out.empty()) {
    csv = std::fopen(opt.out.c_str(), "w");
    if (csv == nullptr) {
      std::perror(opt.out.c_str());
      return 2;
    }
  }
  machine_info();
  std::printf("# duration %d ms per threaded run, median of %d repetitions\n", opt.duration_ms, opt.reps);
  using namespace peers;

  if (want("uncontended")) {
    uncontended({uncontended_peer<SpinPair>(), uncontended_peer<SpinStorePair>(), uncontended_peer<Weave>(), uncontended_peer<WeaveExported>(),
                 uncontended_peer<PthreadMutex>(), uncontended_peer<PthreadAdaptive>(),
                 uncontended_peer<StdMutex>(), uncontended_peer<StdSharedMutex>(), uncontended_peer<Absl>(),
                 uncontended_peer<ParkingLotFfi>(),
                 {"parking_lot (Rust loop)",
                  [](uint64_t iters) { return (double)ftw_pl_native_uncontended(iters) / (double)iters; }}});
  }
  if (want("contended")) {
    const std::vector<ThreadedPeer> peers = {
        mutex_peer<Weave>(),        mutex_peer<PthreadMutex>(), mutex_peer<PthreadAdaptive>(),
        mutex_peer<StdMutex>(),     mutex_peer<Absl>(),         mutex_peer<ParkingLotFfi>(),
        {"parking_lot (Rust loop)", contended_pl_native_once}};
    run_interleaved("contended", peers, workloads, std::size(workloads));
  }
  if (want("pingpong")) {
    pingpong();
  }
  if (want("manypark")) {
    manypark<WeavePark>();
    manypark<FutexPark>();
  }
  if (want("hotbucket")) {
    for (int t : {4, 16, 64}) {
      hotbucket<WeavePark>(t);
    }
  }
  if (want("rwlock")) {
    const std::vector<ThreadedPeer> peers = {rw_peer<WeaveRW>(), rw_peer<PthreadRW>(), rw_peer<StdSharedMutex>(),
                                             rw_peer<Absl>(), rw_peer<ParkingLotRWFfi>()};
    handoff_note("before rwlock");
    run_interleaved("rwlock", peers, read95, std::size(read95));
    handoff_note("after rwlock");
  }
  if (want("churn")) {
    churn();
  }
  if (want("regpair")) {
    regpair();
  }
  if (want("event")) {
    event_latency();
  }
  if (want("debug")) {
    debug_mode();
  }
  if (want("cond")) {
    cond_pingpong();
  }
  if (want("profile")) {
    profile_cost();
  }
  load_at_end();
  if (csv != nullptr) {
    std::fclose(csv);
  }
  if (failures.load() != 0) {
    std::fprintf(stderr, "lockbench: %d self-check failures\n", failures.load());
    return 1;
  }
  return 0;
}
