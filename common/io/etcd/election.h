// Election: one holder at a time of a key in etcd, bound to the holder's
// lease (the controller's election; etcd's own recipe, without its queue).
//
//   Campaign   one transaction: if the key does not exist
//              (create_revision == 0), put it with our value and lease; else
//              read it. Whoever created it holds it until it is deleted
//              (Resign) or its lease ends (etcd deletes it). Not blocking:
//              a loser observes the key and campaigns again once it is
//              vacant.
//   Guard      adds "the key's create_revision is still the one we
//              created": a transaction of a holder that lost the key (its
//              lease expired, someone else won since) fails, so a deposed
//              controller can never write.
//   Observe    a watch of the key that reports the holder after each change.
//
// Fencing with it: act as holder only while the lease is valid by the
// holder's clock (LeaseKeeper::Valid()) AND write only through Guard()ed
// transactions. Thread-safe (it only calls the client).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/io/etcd/client.h"
#include "common/io/etcd/watch.h"

namespace todo::io {

// Who holds the key.
struct Leadership {
  std::string key;
  std::string value;
  int64_t lease = 0;
  int64_t create_revision = 0;  // identifies this tenure: a new holder has a new one
  int64_t mod_revision = 0;
};

class Election {
 public:
  // `client` must outlive the election.
  Election(EtcdClient* client, std::string key) : client_(client), key_(std::move(key)) {}

  const std::string& key() const { return key_; }

  struct CampaignResult {
    bool won = false;      // we hold the key (now, or already with this lease)
    Leadership holder;     // who holds it (us if won)
    int64_t revision = 0;  // the store's revision of the answer: observe from revision + 1
  };
  // One attempt to take the key with `value`, bound to `lease` (non-zero).
  // If the key is already ours (held under `lease`, e.g. an earlier attempt
  // whose answer was lost), that counts as won. Errors as EtcdClient::Txn;
  // kNotFound if the lease does not exist.
  StatusOr<CampaignResult> Campaign(std::string_view value, int64_t lease);

  // The holder now (nullopt: vacant), and the store's revision.
  struct Holder {
    std::optional<Leadership> holder;
    int64_t revision = 0;
  };
  StatusOr<Holder> Current();

  // Replaces the value while `mine` still holds the key; false if it does
  // not any more.
  StatusOr<bool> Proclaim(const Leadership& mine, std::string_view value);

  // Deletes the key if `mine` still holds it. OK (nothing done) if it does
  // not.
  Status Resign(const Leadership& mine);

  // Adds the condition "`mine` still holds the key" to `txn`.
  static void Guard(const Leadership& mine, TxnRequest* txn);

  // Starts a watch of the key from `after_revision` + 1 that calls
  // `on_change` with the holder after each change (nullopt: vacant), on the
  // watch's thread; `on_status` (may be empty) gets the watch's other
  // updates (connection, compaction: then re-read with Current() and
  // observe again). internal if the watch cannot start.
  StatusOr<std::unique_ptr<EtcdWatch>> Observe(
      int64_t after_revision, std::function<void(const std::optional<Leadership>&)> on_change,
      std::function<void(const WatchUpdate&)> on_status = nullptr);

 private:
  EtcdClient* const client_;
  const std::string key_;
};

}  // namespace todo::io
