#include "common/names.h"

namespace todo {

bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidEndpoint(std::string_view endpoint) {
  for (std::string_view scheme : {"tcp://", "ipc://", "inproc://"}) {
    if (endpoint.size() > scheme.size() && endpoint.substr(0, scheme.size()) == scheme) {
      for (char c : endpoint) {
        if (c == ' ' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace todo
