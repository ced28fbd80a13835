// The operator page's files (router/web/: index.html, app.js, style.css,
// favicon.svg), compiled into todo-router at build time by
// router/web/embed.cmake, so the page needs nothing but the router: no CDN,
// no files beside the binary, no internet.
#pragma once

#include <span>
#include <string_view>

namespace todo::router::web {

struct Asset {
  std::string_view path;          // "/" for index.html, else "/ui/<file name>"
  std::string_view content_type;  // from the extension
  std::string_view body;          // the file's bytes (static storage)
};

// Every file, in the order the build listed them. Thread-safe.
std::span<const Asset> Assets();

// The file served at `path`, or null.
inline const Asset* FindAsset(std::string_view path) {
  for (const Asset& a : Assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

}  // namespace todo::router::web
