// todo-admin: init and inspect a replicated cluster through etcd (see
// admin.h). Exit status: 0 success, 1 refusal, 2 usage error.
#include <CLI/CLI.hpp>
#include <iostream>

#include "common/io/etcd/client.h"
#include "common/io/process.h"
#include "common/names.h"
#include "router/admin/admin.h"

using namespace todo;

int main(int argc, char** argv) {
  admin::AdminOptions o;
  CLI::App app("todo-admin: create and inspect a replicated todo cluster (its map lives in etcd)",
               "todo-admin");
  app.require_subcommand(1);
  app.add_option("--etcd", o.etcd, "etcd's client URLs, comma-separated")->required();
  app.add_option("--cluster-name", o.cluster_name, "the cluster's name in etcd")
      ->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "deadline of each etcd call and each node asked")
      ->capture_default_str();

  admin::InitArgs init;
  auto* init_cmd = app.add_subcommand("init", "create the cluster: its members and its map");
  init_cmd->add_option("--replicas", init.replicas, "copies of each list (R)")->required();
  init_cmd->add_option("--partitions", init.partitions, "partitions (P), fixed for good")
      ->capture_default_str();
  init_cmd
      ->add_option("--min-insync", init.min_insync,
                   "in-sync copies a partition needs to take writes (K)")
      ->capture_default_str();
  init_cmd->add_option("names", init.members, "the member nodes' names")->required();

  bool json = false;
  auto* status_cmd = app.add_subcommand("status", "members, primaries, replicas out of sync, lag");
  status_cmd->add_flag("--json", json, "one JSON object instead of a table");

  std::string node;
  auto* add_cmd = app.add_subcommand("add-node", "make NAME a member; partitions move to it");
  add_cmd->add_option("name", node, "the node's name")->required();
  auto* remove_cmd = app.add_subcommand("remove-node", "drain NAME, then it is no longer a member");
  remove_cmd->add_option("name", node, "the node's name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "todo-admin: error: " << e.what() << "\n";
    return 2;
  }
  io::SetUpLogging("todo-admin", "admin", "warn");
  auto endpoints = io::ParseEtcdEndpointList(o.etcd);
  if (!endpoints.ok()) {
    std::cerr << "todo-admin: error: --etcd: " << endpoints.status().message() << "\n";
    return 2;
  }
  if (!IsValidNodeName(o.cluster_name)) {
    std::cerr << "todo-admin: error: --cluster-name must be 1-64 characters of [A-Za-z0-9_.-]\n";
    return 2;
  }
  if (o.timeout_ms < 100 || o.timeout_ms > 600000) {
    std::cerr << "todo-admin: error: --timeout-ms must be 100-600000\n";
    return 2;
  }
  const bool names_node = add_cmd->parsed() || remove_cmd->parsed();
  if (names_node && !IsValidNodeName(node)) {
    std::cerr << "todo-admin: error: node name '" << node
              << "' must be 1-64 characters of [A-Za-z0-9_.-]\n";
    return 2;
  }
  io::EtcdClient::Options eo;
  eo.call_timeout = std::chrono::milliseconds(o.timeout_ms);
  eo.attempt_timeout = std::chrono::milliseconds(std::min<int64_t>(1000, o.timeout_ms));
  auto etcd = io::EtcdClient::Create(*endpoints, eo);
  if (!etcd.ok()) {
    std::cerr << "todo-admin: error: " << etcd.status().message() << "\n";
    return 2;
  }
  if (*init_cmd) return admin::Init(etcd->get(), o, init, std::cout, std::cerr);
  if (*status_cmd) return admin::Status(etcd->get(), o, json, std::cout, std::cerr);
  if (*add_cmd) return admin::AddNode(etcd->get(), o, node, std::cout, std::cerr);
  if (*remove_cmd) return admin::RemoveNode(etcd->get(), o, node, std::cout, std::cerr);
  return 2;
}
