// A request whose bytes do not parse as the method's message is the caller's error,
// not the server's: gRPC's generated handlers answer it INTERNAL with an empty
// message (and our log would call it an error). This interceptor, first in the chain,
// sees the failed parse (POST_RECV_MESSAGE with no message) and answers
// INVALID_ARGUMENT naming the method instead. Methods on raw bytes parse for
// themselves and say so in their own words.
#ifndef NORMD_SERVER_SERVICE_UNPARSED_REQUEST_H_
#define NORMD_SERVER_SERVICE_UNPARSED_REQUEST_H_

#include "grpcpp/support/server_interceptor.h"

namespace normd {

class UnparsedRequestFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_UNPARSED_REQUEST_H_
