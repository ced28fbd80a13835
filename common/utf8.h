// Strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates, no
// code points above U+10FFFF. Pure.
#pragma once

#include <string_view>

namespace todo {

bool IsValidUtf8(std::string_view bytes);

}  // namespace todo
