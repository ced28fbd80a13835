// The request target of an HTTP request, split and decoded the way the
// router's HTTP API has always read it (cpp-httplib 0.11's rules, which it
// used until the event-driven server replaced it). Pure: no I/O.
#pragma once

#include <string>
#include <string_view>

#include "router/http_mapping.h"

namespace todo::router::http {

// Percent-decodes `s` leniently: "%XX" (two hex digits) is that byte,
// "%uXXXX" that code point in UTF-8; any other '%' stays as it is; with
// `plus_is_space`, '+' is ' ' (query strings).
std::string DecodeUrl(std::string_view s, bool plus_is_space);

// The target's path (before '?'), decoded without '+' -> ' ': what routes
// are matched against.
std::string TargetPath(std::string_view target);

// The query's parameters: http_mapping.h's ParseQuery (strict: a bad
// %-escape is a 400, not a literal '%').

}  // namespace todo::router::http
