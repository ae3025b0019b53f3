// Who is calling: with tokens, the token; without, the peer's host.
#ifndef NORMD_SERVER_SERVICE_PRINCIPAL_H_
#define NORMD_SERVER_SERVICE_PRINCIPAL_H_

#include <string>

namespace normd {

struct Principal {
  std::string id;  // the token's unique id, or the peer's host ("ipv4:127.0.0.1")
  bool authenticated = false;
  // What the caller owns (its regions) is keyed by this: the token, or "" when the
  // server has no tokens and every caller is trusted alike.
  std::string owner() const { return authenticated ? id : std::string(); }
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_PRINCIPAL_H_
