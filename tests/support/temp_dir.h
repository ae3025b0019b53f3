// A fresh directory under the test temp dir, removed with its contents at scope exit.
#ifndef NORMD_TESTS_SUPPORT_TEMP_DIR_H_
#define NORMD_TESTS_SUPPORT_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace normd::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "normd-test-XXXXXX";
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
