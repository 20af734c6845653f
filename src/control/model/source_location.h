#pragma once

#include <string>

namespace sheave::control {

// Where a resource or a field was written, so every tool can print
// "file:line" and editors can jump there. Lines and columns count from 1;
// 0 means unknown (e.g. a file that could not be read at all).
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:column", or less when parts are unknown.
  std::string toString() const {
    std::string out = file;
    if (line > 0) {
      out += ":" + std::to_string(line);
      if (column > 0) out += ":" + std::to_string(column);
    }
    return out;
  }
};

}  // namespace sheave::control
