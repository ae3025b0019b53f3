// A fresh directory under $TEST_TMPDIR (as GoogleTest uses it) or /tmp, removed with
// its contents at scope exit. Free of GoogleTest so that the fuzzers can use it too.
#ifndef NORMD_TESTS_SUPPORT_TEMP_DIR_H_
#define NORMD_TESTS_SUPPORT_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <string>

namespace normd::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/normd-test-XXXXXX";
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_TEMP_DIR_H_
