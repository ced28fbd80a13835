# Turns the operator page's files into a C++ source (router/web/assets.h):
#   cmake -DOUT=assets_data.cc -DFILES="a.html;b.js" -P embed.cmake
# index.html is served at "/", every other file at "/ui/<name>". Each file
# becomes a byte array, so any content is safe (no raw-string delimiters).
if(NOT OUT OR NOT FILES)
  message(FATAL_ERROR "embed.cmake: set OUT and FILES")
endif()
set(arrays "")
set(table "")
set(i 0)
foreach(f IN LISTS FILES)
  get_filename_component(name "${f}" NAME)
  get_filename_component(ext "${f}" LAST_EXT)
  if(name STREQUAL "index.html")
    set(url "/")
  else()
    set(url "/ui/${name}")
  endif()
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(ext STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  elseif(ext STREQUAL ".css")
    set(type "text/css; charset=utf-8")
  elseif(ext STREQUAL ".svg")
    set(type "image/svg+xml")
  else()
    message(FATAL_ERROR "embed.cmake: no content type for ${f}")
  endif()
  file(READ "${f}" hex HEX)
  string(LENGTH "${hex}" hex_len)
  math(EXPR size "${hex_len} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x..,){24})" "\\1\n    " bytes "${bytes}")
  string(APPEND arrays "// ${name}\nconst unsigned char kFile${i}[${size}] = {\n    ${bytes}};\n\n")
  string(APPEND table "      {\"${url}\", \"${type}\", Bytes(kFile${i}, ${size})},\n")
  math(EXPR i "${i} + 1")
endforeach()
set(text "// Generated from router/web/ by router/web/embed.cmake at build time: do not edit.
#include <array>

#include \"router/web/assets.h\"

namespace todo::router::web {
namespace {

std::string_view Bytes(const unsigned char* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

${arrays}}  // namespace

std::span<const Asset> Assets() {
  static const Asset kAssets[] = {
${table}  };
  return kAssets;
}

}  // namespace todo::router::web
")
# Written only when it changed, so an unchanged page rebuilds nothing.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${text}")
