// lockbench: ft_weave against its peers, every scenario for every peer in one
// process, in the style of CPython's Tools/lockbench (fixed-duration runs of
// many threads, per-thread acquisition counts).
//
//   lockbench [--smoke] [--out FILE] [--duration-ms N] [--reps N] [--only SCENARIO]
//             [--peer NAME]   (only peers whose name contains NAME: for profiling)
//
// Scenarios: uncontended, contended, pingpong, rwlock, churn, event, cond.
// Output: one CSV row per (scenario, peer, threads, workload) with the median
// of --reps repetitions, plus '#'-prefixed lines describing the machine. A
// self-check (the shared counter equals the sum of the acquisitions) makes
// the process exit non-zero when a lock let two threads in; nothing else is
// asserted: the numbers are reported, not judged.
//
// Google Benchmark is not used: its threaded runs neither take a fixed
// duration across peers nor report per-thread counts, and one driver keeps
// one CSV schema for all scenarios (the .NET runner writes the same one).

#include "peers/peers.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
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
  std::fputs(buf, stdout);
  if (csv != nullptr) {
    std::fputs(buf, csv);
    std::fprintf(csv, "scenario,peer,threads,workload,value,unit,min_acq,max_acq\n");
  }
}

void load_at_end() {
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  char buf[128];
  std::snprintf(buf, sizeof buf, "# load at end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  std::fputs(buf, stdout);
  if (csv != nullptr) {
    std::fputs(buf, csv);
  }
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
void uncontended(const std::vector<UncontendedPeer> &all) {
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
    row("uncontended", peers[i]->name, 1, "-", median(ns[i]), "ns/op");
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
void pingpong() {
  if (!want_peer(P::name)) {
    return;
  }
  const uint32_t rounds = opt.smoke ? 200 : 20000;
  pingpong_once<P>(rounds / 10);
  std::vector<double> us;
  for (int r = 0; r < opt.reps; r++) {
    us.push_back(pingpong_once<P>(rounds));
  }
  row("pingpong", P::name, 2, "-", median(us), "us/rt");
}

void pingpong_pl_native() {
  if (!want_peer("parking_lot_core (Rust loop)")) {
    return;
  }
  const uint32_t rounds = opt.smoke ? 200 : 20000;
  ftw_pl_native_park_pingpong(rounds / 10);
  std::vector<double> us;
  for (int r = 0; r < opt.reps; r++) {
    us.push_back((double)ftw_pl_native_park_pingpong(rounds) / 1000.0);
  }
  row("pingpong", "parking_lot_core (Rust loop)", 2, "-", median(us), "us/rt");
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
        // operations): how long a writer waited, to show that readers do not
        // starve writers.
        auto t0 = Clock::now();
        sh->lock.lock();
        my_max_wait = std::max(my_max_wait, ns_since(t0));
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
  result.max_wait_us = (double)max_wait_ns.load() / 1000.0;
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
  };
  const Case cases[] = {{"plain create+join", plain_thread},
                        {"ft_weave 4 destructors", weave_destructors_thread},
                        {"ft_weave 1 call (no destructor)", weave_call_thread},
                        {"pthread keys 4 destructors", pthread_keys_thread}};
  // Cases interleaved within each repetition, as run_interleaved does.
  std::vector<std::vector<double>> us(std::size(cases));
  for (const Case &c : cases) {
    churn_once(c.fn, n / 10);
  }
  for (int r = 0; r < opt.reps; r++) {
    for (size_t i = 0; i < std::size(cases); i++) {
      us[i].push_back(churn_once(cases[i].fn, n));
    }
  }
  for (size_t i = 0; i < std::size(cases); i++) {
    row("churn", cases[i].name, 1, "-", median(us[i]), "us/thread");
  }
  uint64_t expected = 4ull * (uint64_t)(n / 10 + n * opt.reps) * 2;  // ft_weave and pthread keys
  if (destructor_runs.load() != expected) {
    std::fprintf(stderr, "lockbench: %llu destructor runs, expected %llu\n",
                 (unsigned long long)destructor_runs.load(), (unsigned long long)expected);
    failures++;
  }
}

// ---- 6a. event notify -> waiter wake latency -------------------------------

// A waiter thread waits on event i; the main thread gives it time to park
// (200 us), reads the clock and notifies; the waiter reads the clock on
// waking. Latency = waiter's time - notifier's time (one monotonic clock).
template <class E>
void event_latency() {
  if (!want_peer(E::name)) {
    return;
  }
  const int n = opt.smoke ? 20 : 1500;
  std::unique_ptr<E[]> events(new E[n]);
  std::vector<int64_t> woke(n), sent(n);
  std::atomic<int> done{0};
  auto base = Clock::now();
  std::thread waiter([&] {
    for (int i = 0; i < n; i++) {
      events[i].wait();
      woke[i] = ns_since(base);
      done.store(i + 1, std::memory_order_release);
    }
  });
  for (int i = 0; i < n; i++) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    sent[i] = ns_since(base);
    events[i].notify();
    while (done.load(std::memory_order_acquire) != i + 1) {
      std::this_thread::yield();
    }
  }
  waiter.join();
  std::vector<double> us;
  for (int i = n / 10; i < n; i++) {  // the first tenth is the warm-up
    us.push_back((double)(woke[i] - sent[i]) / 1000.0);
  }
  row("event", E::name, 2, "-", median(us), "us");
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
void cond_pingpong() {
  if (!want_peer(C::name)) {
    return;
  }
  const uint32_t rounds = opt.smoke ? 200 : 20000;
  cond_once<C>(rounds / 10);
  std::vector<double> us;
  for (int r = 0; r < opt.reps; r++) {
    us.push_back(cond_once<C>(rounds));
  }
  row("cond", C::name, 2, "-", median(us), "us/rt");
}

void cond_pl_native() {
  if (!want_peer("parking_lot (Rust loop)")) {
    return;
  }
  const uint32_t rounds = opt.smoke ? 200 : 20000;
  ftw_pl_native_cond_pingpong(rounds / 10);
  std::vector<double> us;
  for (int r = 0; r < opt.reps; r++) {
    us.push_back((double)ftw_pl_native_cond_pingpong(rounds) / 1000.0);
  }
  row("cond", "parking_lot (Rust loop)", 2, "-", median(us), "us/rt");
}

int usage() {
  std::fprintf(stderr,
               "usage: lockbench [--smoke] [--out FILE] [--duration-ms N] [--reps N] [--only SCENARIO] [--peer NAME]\n"
               "scenarios: uncontended contended pingpong rwlock churn event cond\n");
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
    uncontended({uncontended_peer<SpinPair>(), uncontended_peer<Weave>(), uncontended_peer<WeaveExported>(),
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
    pingpong<WeavePark>();
    pingpong<FutexPark>();
    pingpong_pl_native();
  }
  if (want("rwlock")) {
    const std::vector<ThreadedPeer> peers = {rw_peer<WeaveRW>(), rw_peer<PthreadRW>(), rw_peer<StdSharedMutex>(),
                                             rw_peer<Absl>(), rw_peer<ParkingLotRWFfi>()};
    run_interleaved("rwlock", peers, read95, std::size(read95));
  }
  if (want("churn")) {
    churn();
  }
  if (want("event")) {
    event_latency<WeaveEvent>();
    event_latency<FutexEvent>();
    event_latency<PthreadEvent>();
    event_latency<AbslEvent>();
  }
  if (want("cond")) {
    cond_pingpong<WeaveCond>();
    cond_pingpong<PthreadCond>();
    cond_pingpong<StdCond>();
    cond_pingpong<AbslCond>();
    cond_pl_native();
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
