// The router's view of the cluster: which nodes exist and where they listen.
//
// Nodes come from `--node NAME=ENDPOINT` flags and from a cluster file
// (deploy/cluster.example.conf):
//
//   # comment (a '#' starting a word comments out the rest of the line)
//   node n1 tcp://127.0.0.1:7001
//   node n2 tcp://127.0.0.1:7002 SERVER_PUBLIC_KEY_Z85
//
// Node names are 1-64 bytes of [A-Za-z0-9_.-] and unique; endpoints are
// tcp://, ipc:// or inproc:// and unique. The optional fourth field is the
// node's CURVE public key (40 Z85 characters: its todo-keygen PREFIX.pub),
// needed when the router runs with --curve-secret; `--node-key NAME=KEY`
// gives it on the command line instead. Owners are chosen by rendezvous
// hashing over the names only, so the order of flags and lines never matters.
// Pure: parsing takes text; only LoadClusterFile and ApplyNodeKeyFlags (a
// key given as a file) read files.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/io/security/keys.h"
#include "common/names.h"
#include "common/status.h"

namespace todo::router {

struct NodeSpec {
  std::string name;
  std::string endpoint;
  std::string origin;  // where it was given, for messages: "--node" or "FILE:LINE"
  // The node's CURVE server public key, if given (cluster file or --node-key).
  std::optional<security::CurveKey> server_key;
};

// Node names and endpoints: the rules todo-node applies too.
using ::todo::IsValidEndpoint;
using ::todo::IsValidNodeName;

// Parses one `--node` value "NAME=ENDPOINT" (split at the first '=').
// bad_request naming the flag and the rule on error.
StatusOr<NodeSpec> ParseNodeFlag(std::string_view value);

// Parses the text of a cluster file; `file` names it in messages, which read
// "FILE:LINE: ...". Checks each line's syntax, name and endpoint, and
// duplicates within the file; an empty result is not an error here.
StatusOr<std::vector<NodeSpec>> ParseClusterText(std::string_view text, std::string_view file);

// Reads and parses a cluster file; bad_request if it can't be read.
StatusOr<std::vector<NodeSpec>> LoadClusterFile(const std::string& path);

// Joins the flag nodes and the file nodes into the cluster: at least one
// node, names unique, endpoints unique (messages name both origins). The
// result keeps flags first, then file order.
StatusOr<std::vector<NodeSpec>> BuildCluster(std::vector<NodeSpec> from_flags,
                                             std::vector<NodeSpec> from_file);

// Sets server keys from `--node-key NAME=KEY` values (KEY: 40 Z85
// characters, or a public key file). bad_request naming the flag if NAME is
// not a node of `nodes`, is given twice, or already has another key from
// the cluster file, or if KEY is bad.
Status ApplyNodeKeyFlags(const std::vector<std::string>& values, std::vector<NodeSpec>* nodes);

// With CURVE (`curve`), every node needs a server key; without, a key
// given anyway is an error too (the router would talk plaintext to a node
// that expects CURVE). bad_request naming the nodes.
Status CheckNodeKeys(const std::vector<NodeSpec>& nodes, bool curve);

// The names of `nodes`, in order (what Rendezvous takes).
std::vector<std::string> NodeNames(const std::vector<NodeSpec>& nodes);

}  // namespace todo::router
