#include "server/store/etcd/etcd_txn.h"

#include "server/store/etcd/etcd_client.h"

namespace normd {

EtcdTxn& EtcdTxn::GetPrefix(const std::string& prefix) {
  auto* range = txn_.add_success()->mutable_request_range();
  range->set_key(prefix);
  range->set_range_end(PrefixEnd(prefix));
  return *this;
}

EtcdTxn& EtcdTxn::DeletePrefix(const std::string& prefix) {
  auto* del = txn_.add_success()->mutable_request_delete_range();
  del->set_key(prefix);
  del->set_range_end(PrefixEnd(prefix));
  return *this;
}

EtcdTxn& EtcdTxn::Compare(std::string key, etcdserverpb::Compare::CompareTarget target,
                          int64_t value) {
  etcdserverpb::Compare* compare = txn_.add_compare();
  compare->set_key(std::move(key));
  compare->set_target(target);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  if (target == etcdserverpb::Compare::CREATE) {
    compare->set_create_revision(value);
  } else {
    compare->set_mod_revision(value);
  }
  return *this;
}

}  // namespace normd
