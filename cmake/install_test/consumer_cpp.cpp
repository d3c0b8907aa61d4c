// Built against the installed ft_weave.hpp with the flags pkg-config prints:
// the C++ header is installed beside ft_weave.h and works with std guards.
#include <ft_weave.hpp>

#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <thread>

static ft_weave::mutex m;
static ft_weave::rw_mutex rw;
static long counter;

int main() {
  std::thread t([] {
    for (int i = 0; i < 1000; ++i) {
      std::scoped_lock g(m, rw);
      ++counter;
    }
  });
  for (int i = 0; i < 1000; ++i) {
    std::lock_guard<ft_weave::mutex> g(m);
    ++counter;
  }
  t.join();
  std::shared_lock<ft_weave::rw_mutex> r(rw);
  if (counter != 2000) {
    std::fprintf(stderr, "counter %ld, expected 2000\n", counter);
    return 1;
  }
  std::printf("consumer_cpp: ft_weave %s ok\n", weave_version());
  return 0;
}
