// A small builder of etcd Txns, as clientv3's Txn().If(...).Then(...): the guards
// (compares, all of which must hold) and the operations that run when they do.
//   EtcdTxn().IfModifiedAt(key, revision).Put(key, value).Build()
#ifndef NORMD_SERVER_STORE_ETCD_ETCD_TXN_H_
#define NORMD_SERVER_STORE_ETCD_ETCD_TXN_H_

#include <cstdint>
#include <string>
#include <utility>

#include "etcd/rpc.pb.h"

namespace normd {

class EtcdTxn {
 public:
  // Guards. A key's mod revision 0 means it does not exist; its create revision names
  // which incarnation of it this is (a key deleted and put again has a new one).
  EtcdTxn& IfModifiedAt(std::string key, int64_t mod_revision) {
    return Compare(std::move(key), etcdserverpb::Compare::MOD, mod_revision);
  }
  EtcdTxn& IfCreatedAt(std::string key, int64_t create_revision) {
    return Compare(std::move(key), etcdserverpb::Compare::CREATE, create_revision);
  }
  EtcdTxn& IfAbsent(std::string key) { return IfCreatedAt(std::move(key), 0); }

  // Operations, answered in order in TxnResponse::responses.
  EtcdTxn& Get(std::string key) {
    txn_.add_success()->mutable_request_range()->set_key(std::move(key));
    return *this;
  }
  EtcdTxn& GetPrefix(const std::string& prefix);
  EtcdTxn& Put(std::string key, std::string value) {
    auto* put = txn_.add_success()->mutable_request_put();
    put->set_key(std::move(key));
    put->set_value(std::move(value));
    return *this;
  }
  EtcdTxn& Delete(std::string key) {
    txn_.add_success()->mutable_request_delete_range()->set_key(std::move(key));
    return *this;
  }
  EtcdTxn& DeletePrefix(const std::string& prefix);

  const etcdserverpb::TxnRequest& request() const { return txn_; }
  etcdserverpb::TxnRequest Build() && { return std::move(txn_); }

 private:
  EtcdTxn& Compare(std::string key, etcdserverpb::Compare::CompareTarget target, int64_t value);

  etcdserverpb::TxnRequest txn_;
};

}  // namespace normd

#endif  // NORMD_SERVER_STORE_ETCD_ETCD_TXN_H_
