// JSON for the metadata, metrics and results files: values are built as nlohmann::ordered_json
// (members keep the order they were added in) and written by json_text in one house style.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace aet {

using Json = nlohmann::ordered_json;

// `j` as text: a top-level object one member per line (two spaces of indent), every nested value
// on one line ("key": value, items separated by ", "); floating-point numbers with 10 significant
// digits, NaN and infinities (undefined scores) as null; a final newline.
std::string json_text(const Json& j);

// A number as json_text writes it, for log lines and messages: 10 significant digits; NaN and
// infinities (undefined scores) as null.
std::string json_number(double v);

}  // namespace aet
