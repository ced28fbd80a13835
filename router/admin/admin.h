// todo-admin: the operator's tool for a replicated cluster
// (shared/spec/replication.md, "Command lines"). Each command is a function
// that prints what it did and returns the process's exit status: 0 on
// success, 1 on a refusal (printed on stderr), 2 on a usage error.
//
//   init --replicas R [--partitions P] [--min-insync K] NAME...
//        writes the first map, with a compare-and-swap that fails if the
//        cluster exists already
//   status [--json]
//        members (alive?), epochs, primaries and backups per node, replicas
//        not in sync and their lag (asked of the primaries over ZeroMQ),
//        the controller, etcd's members
//   add-node NAME / remove-node NAME
//        a member from now on / drained, then no longer a member
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/io/etcd/client.h"

namespace todo::admin {

struct AdminOptions {
  std::string etcd;                   // --etcd URL[,URL...]
  std::string cluster_name = "todo";  // --cluster-name
  int64_t timeout_ms = 3000;          // --timeout-ms: each etcd call, each node asked
};

struct InitArgs {
  uint32_t replicas = 2;
  uint32_t partitions = 256;
  uint32_t min_insync = 1;
  std::vector<std::string> members;
};

int Init(io::EtcdClient* etcd, const AdminOptions& o, const InitArgs& a, std::ostream& out,
         std::ostream& err);
int Status(io::EtcdClient* etcd, const AdminOptions& o, bool json, std::ostream& out,
           std::ostream& err);
int AddNode(io::EtcdClient* etcd, const AdminOptions& o, const std::string& name, std::ostream& out,
            std::ostream& err);
int RemoveNode(io::EtcdClient* etcd, const AdminOptions& o, const std::string& name,
               std::ostream& out, std::ostream& err);

}  // namespace todo::admin
