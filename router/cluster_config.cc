#include "router/cluster_config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace todo::router {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Splits a line into whitespace-separated words, stopping at a word that
// starts with '#'.
std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i == line.size() || line[i] == '#') break;
    size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    words.push_back(line.substr(start, i - start));
  }
  return words;
}

// A printable rendering of untrusted text for an error message.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 80)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  if (s.size() > 80) out += "...";
  return out + "'";
}

Status CheckSpec(const NodeSpec& spec) {
  if (!IsValidNodeName(spec.name)) {
    return Status::BadRequest(spec.origin + ": node name " + Quote(spec.name) +
                              " must be 1-64 characters of [A-Za-z0-9_.-]");
  }
  if (!IsValidEndpoint(spec.endpoint)) {
    return Status::BadRequest(spec.origin + ": endpoint " + Quote(spec.endpoint) + " of node '" +
                              spec.name +
                              "' must be a tcp://, ipc:// or inproc:// endpoint (tcp://HOST:PORT, "
                              "HOST an IPv4 address or a name, PORT 0-65535 or *)");
  }
  return Status::Ok();
}

// Names unique, endpoints unique; the error names the later origin and the
// earlier one.
Status CheckUnique(const std::vector<NodeSpec>& nodes) {
  std::unordered_map<std::string_view, const NodeSpec*> names;
  std::unordered_map<std::string_view, const NodeSpec*> endpoints;
  for (const NodeSpec& n : nodes) {
    if (auto [it, added] = names.emplace(n.name, &n); !added) {
      return Status::BadRequest(n.origin + ": duplicate node name '" + n.name +
                                "' (first given at " + it->second->origin + ")");
    }
    if (auto [it, added] = endpoints.emplace(n.endpoint, &n); !added) {
      return Status::BadRequest(n.origin + ": node '" + n.name + "' has the same endpoint " +
                                n.endpoint + " as node '" + it->second->name + "' (" +
                                it->second->origin + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<NodeSpec> ParseNodeFlag(std::string_view value) {
  size_t eq = value.find('=');
  if (eq == std::string_view::npos) {
    return Status::BadRequest("--node " + Quote(value) + " must be NAME=ENDPOINT");
  }
  NodeSpec spec{std::string(value.substr(0, eq)), std::string(value.substr(eq + 1)),
                "--node " + Quote(value), std::nullopt};
  if (Status s = CheckSpec(spec); !s.ok()) return s;
  return spec;
}

StatusOr<std::vector<NodeSpec>> ParseClusterText(std::string_view text, std::string_view file) {
  std::vector<NodeSpec> nodes;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    std::string origin = std::string(file) + ":" + std::to_string(line_no);
    std::vector<std::string_view> words = Words(line);
    if (words.empty()) continue;
    if (words[0] != "node") {
      return Status::BadRequest(origin + ": unknown directive " + Quote(words[0]) +
                                " (expected 'node NAME ENDPOINT [SERVER_KEY]')");
    }
    if (words.size() != 3 && words.size() != 4) {
      return Status::BadRequest(origin + ": expected 'node NAME ENDPOINT [SERVER_KEY]', got " +
                                std::to_string(words.size()) + " words");
    }
    NodeSpec spec{std::string(words[1]), std::string(words[2]), origin, std::nullopt};
    if (Status s = CheckSpec(spec); !s.ok()) return s;
    if (words.size() == 4) {
      auto key = security::DecodeZ85Key(words[3]);
      if (!key.ok()) {
        return Status::BadRequest(origin + ": server key of node '" + spec.name +
                                  "': " + key.status().message());
      }
      spec.server_key = *key;
    }
    nodes.push_back(std::move(spec));
  }
  if (Status s = CheckUnique(nodes); !s.ok()) return s;
  return nodes;
}

StatusOr<std::vector<NodeSpec>> LoadClusterFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    return Status::BadRequest("cluster file " + path + " is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::BadRequest("cannot read cluster file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::BadRequest("cannot read cluster file " + path);
  return ParseClusterText(text.str(), path);
}

StatusOr<std::vector<NodeSpec>> BuildCluster(std::vector<NodeSpec> from_flags,
                                             std::vector<NodeSpec> from_file) {
  std::vector<NodeSpec> nodes = std::move(from_flags);
  for (NodeSpec& n : from_file) nodes.push_back(std::move(n));
  if (nodes.empty()) {
    return Status::BadRequest("no nodes configured: give --node NAME=ENDPOINT or --cluster FILE");
  }
  for (const NodeSpec& n : nodes) {
    if (Status s = CheckSpec(n); !s.ok()) return s;
  }
  if (Status s = CheckUnique(nodes); !s.ok()) return s;
  return nodes;
}

Status ApplyNodeKeyFlags(const std::vector<std::string>& values, std::vector<NodeSpec>* nodes) {
  std::unordered_map<std::string_view, std::string_view> given;  // name -> its flag value
  for (const std::string& value : values) {
    size_t eq = value.find('=');
    if (eq == std::string::npos) {
      return Status::BadRequest("--node-key " + Quote(value) + " must be NAME=KEY");
    }
    std::string_view name = std::string_view(value).substr(0, eq);
    auto node = std::find_if(nodes->begin(), nodes->end(),
                             [&](const NodeSpec& n) { return n.name == name; });
    if (node == nodes->end()) {
      return Status::BadRequest("--node-key: no node named " + Quote(name) +
                                " (give it with --node or in the cluster file)");
    }
    if (!given.emplace(name, value).second) {
      return Status::BadRequest("--node-key: node '" + node->name + "' given twice");
    }
    // Not quoted in messages: a mistaken value might be a secret key.
    auto key = security::ParseKeyOrFile(std::string_view(value).substr(eq + 1));
    if (!key.ok()) {
      return Status::BadRequest("--node-key " + node->name + "=...: " + key.status().message());
    }
    if (node->server_key && *node->server_key != *key) {
      return Status::BadRequest("--node-key: node '" + node->name + "' has another key at " +
                                node->origin);
    }
    node->server_key = *key;
  }
  return Status::Ok();
}

Status CheckNodeKeys(const std::vector<NodeSpec>& nodes, bool curve) {
  std::string names;
  for (const NodeSpec& n : nodes) {
    if (n.server_key.has_value() != curve) names += (names.empty() ? "" : ", ") + n.name;
  }
  if (names.empty()) return Status::Ok();
  if (curve) {
    return Status::BadRequest(
        "--curve-secret: no server key for node(s) " + names +
        ": give each node's public key as the 4th field of its cluster file line "
        "('node NAME ENDPOINT KEY') or with --node-key NAME=KEY");
  }
  return Status::BadRequest("server keys given for node(s) " + names +
                            " but no --curve-secret: the router would talk plaintext to nodes "
                            "that expect CURVE; give --curve-secret and --curve-allow");
}

std::vector<std::string> NodeNames(const std::vector<NodeSpec>& nodes) {
  std::vector<std::string> names;
  names.reserve(nodes.size());
  for (const NodeSpec& n : nodes) names.push_back(n.name);
  return names;
}

}  // namespace todo::router
