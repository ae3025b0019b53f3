// Where every in-process server test starts: a normd on a free loopback port, its
// store in a directory of the test's own.
#ifndef NORMD_TESTS_SUPPORT_LOOPBACK_SERVER_H_
#define NORMD_TESTS_SUPPORT_LOOPBACK_SERVER_H_

#include <string>
#include <utility>

#include "server/normd_server.h"

namespace normd::testing {

inline ServerOptions LoopbackServerOptions(std::string data_dir) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = std::move(data_dir);
  return options;
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_LOOPBACK_SERVER_H_
