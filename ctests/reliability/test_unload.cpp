// Unloading: a plugin whose code is registered as a destructor stays mapped
// until the registration has run or been removed; the library itself stays
// mapped once used (see docs/reliability.md).
#include "../test_util.hpp"

#include <dlfcn.h>

#include <atomic>

namespace {

struct plugin {
  void *handle = nullptr;
  int (*reg)(int *) = nullptr;
  int (*unreg)() = nullptr;
  int (*key_create)(int *, wvls_key_t *) = nullptr;
  int (*tls_set_destructor)(int *, const char *) = nullptr;

  plugin() {
    handle = dlopen(FTW_DESTRUCTOR_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(handle != nullptr);
    *reinterpret_cast<void **>(&reg) = dlsym(handle, "plugin_register");
    *reinterpret_cast<void **>(&unreg) = dlsym(handle, "plugin_unregister");
    *reinterpret_cast<void **>(&key_create) = dlsym(handle, "plugin_key_create");
    *reinterpret_cast<void **>(&tls_set_destructor) = dlsym(handle, "plugin_tls_set_destructor");
    REQUIRE(tls_set_destructor != nullptr);
    REQUIRE(reg != nullptr);
    REQUIRE(unreg != nullptr);
    REQUIRE(key_create != nullptr);
  }
};

bool plugin_loaded() {
  void *h = dlopen(FTW_DESTRUCTOR_PLUGIN, RTLD_NOW | RTLD_NOLOAD);
  if (h != nullptr) {
    dlclose(h);
    return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a plugin with a live registration stays loaded through dlclose until the destructor ran") {
  REQUIRE_FALSE(plugin_loaded());
  static int ran = 0;
  ran = 0;
  plugin p;
  std::atomic<int> stage{0};
  std::atomic<int> rc{-1};
  ftw_test::native_thread worker([&] {
    rc = p.reg(&ran);
    stage = 1;
    while (stage.load() != 2) {
      ftw_test::sleep_ms(1);
    }
  });
  REQUIRE(ftw_test::wait_until([&] { return stage.load() == 1; }));
  CHECK(rc.load() == 0);
  CHECK(dlclose(p.handle) == 0);
  CHECK(plugin_loaded());  // pinned by the registration
  stage = 2;
  worker.join();  // the destructor runs in the plugin's code here
  CHECK(__atomic_load_n(&ran, __ATOMIC_SEQ_CST) == 1);
  CHECK_FALSE(plugin_loaded());  // and then it may go
}

TEST_CASE("unregistering releases the plugin at once") {
  REQUIRE_FALSE(plugin_loaded());
  static int ran = 0;
  ran = 0;
  plugin p;
  std::atomic<int> after_unregister{-1};
  ftw_test::run_pthread([&] {
    REQUIRE(p.reg(&ran) == 0);
    REQUIRE(p.reg(&ran) == 0);  // two registrations, one pin each
    REQUIRE(p.unreg() == 1);    // removes both
    dlclose(p.handle);
    after_unregister = plugin_loaded() ? 1 : 0;
  });
  CHECK(after_unregister.load() == 0);
  CHECK(ran == 0);
  CHECK_FALSE(plugin_loaded());
}

TEST_CASE("many threads registering the same plugin destructor: one pin each, released by the last run") {
  REQUIRE_FALSE(plugin_loaded());
  static int ran = 0;
  ran = 0;
  plugin p;
  std::atomic<int> done{0};
  std::atomic<bool> may_exit{false};
  {
    std::vector<std::unique_ptr<ftw_test::native_thread>> threads;
    for (int i = 0; i < 16; i++) {
      threads.emplace_back(new ftw_test::native_thread([&] {
        for (int k = 0; k < 100; k++) {
          p.reg(&ran);
          if (k % 2 == 0) {
            p.unreg();
          }
        }
        done++;
        while (!may_exit.load()) {
          ftw_test::sleep_ms(1);
        }
      }));
    }
    REQUIRE(ftw_test::wait_until([&] { return done.load() == 16; }));
    CHECK(dlclose(p.handle) == 0);  // no thread calls the plugin's code any more
    CHECK(plugin_loaded());
    may_exit = true;
  }
  // Each thread ended with its last registration (k = 99) live, then ran it.
  CHECK(__atomic_load_n(&ran, __ATOMIC_SEQ_CST) == 16);
  CHECK_FALSE(plugin_loaded());
}

TEST_CASE("a wvls key keeps its destructor's plugin loaded until the key is deleted") {
  REQUIRE_FALSE(plugin_loaded());
  static int ran = 0;
  ran = 0;
  plugin p;
  wvls_key_t key;
  REQUIRE(p.key_create(&ran, &key) == 0);
  CHECK(dlclose(p.handle) == 0);
  CHECK(plugin_loaded());
  ftw_test::run_pthread([&] { wvls_set_value(key, reinterpret_cast<void *>(1)); });
  CHECK(__atomic_load_n(&ran, __ATOMIC_SEQ_CST) == 1);  // ran in the still-mapped plugin
  CHECK(wvls_key_delete(key) == 0);
  CHECK_FALSE(plugin_loaded());
}

TEST_CASE("a storage key's destructor keeps its plugin loaded until a reset forgets it") {
  REQUIRE_FALSE(plugin_loaded());
  static int ran = 0;
  ran = 0;
  plugin p;
  REQUIRE(p.tls_set_destructor(&ran, "ftw.test.unload:value") == 0);
  CHECK(dlclose(p.handle) == 0);
  CHECK(plugin_loaded());
  ftw_test::run_pthread([] { REQUIRE(weave_tls_get("ftw.test.unload:value", 8, nullptr, nullptr) != nullptr); });
  CHECK(__atomic_load_n(&ran, __ATOMIC_SEQ_CST) == 1);  // ran in the still-mapped plugin
  CHECK(weave_storage_reset() >= 0);
  CHECK_FALSE(plugin_loaded());
}
