// Fuzz target "cluster": the router's cluster configuration parsers.
//
// The input is read three ways:
//  - as the text of a cluster file (ParseClusterText): on success every node
//    has a valid name and endpoint, names and endpoints are unique, the
//    nodes written back as a cluster file parse to the same nodes, and
//    BuildCluster and Rendezvous accept them; on error the message is one
//    line starting with "FILE:LINE: ";
//  - as one `--node` flag value (ParseNodeFlag): on success NAME=ENDPOINT
//    reassembles to the input; on error the message is one line naming the
//    flag;
//  - as a key file (ParseKeyText, the format of --node-key files): every key
//    re-encodes to Z85 and decodes back to itself;
//  - as one Z85 key (DecodeZ85Key): a key that decodes re-encodes to the
//    same text.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/io/security/keys.h"
#include "common/rendezvous.h"
#include "router/cluster_config.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace todo::router;
namespace security = todo::security;

bool OneLine(const std::string& message) {
  return !message.empty() && message.find('\n') == std::string::npos &&
         message.find('\r') == std::string::npos;
}

void CheckClusterText(std::string_view text) {
  auto parsed = ParseClusterText(text, "fuzz.conf");
  if (!parsed.ok()) {
    const std::string& m = parsed.status().message();
    FUZZ_CHECK(OneLine(m));
    FUZZ_CHECK(m.rfind("fuzz.conf:", 0) == 0);
    return;
  }
  const std::vector<NodeSpec>& nodes = *parsed;
  std::set<std::string> names, endpoints;
  std::string written;
  for (const NodeSpec& n : nodes) {
    FUZZ_CHECK(IsValidNodeName(n.name));
    FUZZ_CHECK(IsValidEndpoint(n.endpoint));
    FUZZ_CHECK(n.origin.rfind("fuzz.conf:", 0) == 0);
    FUZZ_CHECK(names.insert(n.name).second);
    FUZZ_CHECK(endpoints.insert(n.endpoint).second);
    written += "node " + n.name + " " + n.endpoint;
    if (n.server_key) written += " " + security::EncodeZ85Key(*n.server_key);
    written += "\n";
  }
  auto reparsed = ParseClusterText(written, "written.conf");
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(reparsed->size() == nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    FUZZ_CHECK((*reparsed)[i].name == nodes[i].name);
    FUZZ_CHECK((*reparsed)[i].endpoint == nodes[i].endpoint);
    FUZZ_CHECK((*reparsed)[i].server_key == nodes[i].server_key);
  }
  auto cluster = BuildCluster({}, nodes);
  FUZZ_CHECK(cluster.ok() == !nodes.empty());
  if (!cluster.ok()) {
    FUZZ_CHECK(OneLine(cluster.status().message()));
    return;
  }
  todo::Rendezvous rendezvous(NodeNames(*cluster));
  FUZZ_CHECK(rendezvous.Owner("some list") < nodes.size());
  // The same nodes given twice (as flags and in the file) are refused.
  auto twice = BuildCluster(nodes, nodes);
  FUZZ_CHECK(!twice.ok() && OneLine(twice.status().message()));
}

void CheckNodeFlag(std::string_view value) {
  auto spec = ParseNodeFlag(value);
  if (!spec.ok()) {
    FUZZ_CHECK(OneLine(spec.status().message()));
    FUZZ_CHECK(spec.status().message().rfind("--node ", 0) == 0);
    return;
  }
  FUZZ_CHECK(IsValidNodeName(spec->name));
  FUZZ_CHECK(IsValidEndpoint(spec->endpoint));
  FUZZ_CHECK(spec->name + "=" + spec->endpoint == value);
  FUZZ_CHECK(!spec->server_key.has_value());
}

void CheckKeyText(std::string_view text) {
  auto keys = security::ParseKeyText(text, "fuzz.pub");
  if (!keys.ok()) {
    FUZZ_CHECK(OneLine(keys.status().message()));
    FUZZ_CHECK(keys.status().message().rfind("fuzz.pub:", 0) == 0);
    return;
  }
  for (const security::CurveKey& k : *keys) {
    std::string z85 = security::EncodeZ85Key(k);
    FUZZ_CHECK(z85.size() == security::kZ85KeyChars);
    auto back = security::DecodeZ85Key(z85);
    FUZZ_CHECK(back.ok() && *back == k);
  }
}

// A key is decoded from exactly one text: Z85 text that decodes re-encodes
// to itself (no group silently wraps past 2^32).
void CheckZ85(std::string_view text) {
  auto key = security::DecodeZ85Key(text);
  if (!key.ok()) {
    FUZZ_CHECK(OneLine(key.status().message()));
    return;
  }
  FUZZ_CHECK(security::EncodeZ85Key(*key) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckClusterText(text);
  CheckNodeFlag(text);
  CheckKeyText(text);
  CheckZ85(text);
  return 0;
}
