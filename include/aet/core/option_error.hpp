// The message of a Boost.Program_options error, safe for any value the user typed.
#pragma once

#include <boost/program_options/errors.hpp>
#include <map>
#include <string>

namespace aet {

namespace detail {
// Reads the error's substitutions (a protected member, reached through a pointer to member).
struct OptionErrorAccess : boost::program_options::error_with_option_name {
  static std::map<std::string, std::string> substitutions(
      const boost::program_options::error_with_option_name& e) {
    return e.*(&OptionErrorAccess::m_substitutions);
  }
};
}  // namespace detail

// The library formats a message by replacing each %name% token of its template until none is
// left, so a value holding its own token (`-n 'x%value%'`, or `seed = %value%` in a config file)
// never finishes (found by fuzzing the config reader). Such a token in a substituted value is
// shown with a space before its closing '%' instead; every other message is the library's own.
inline std::string option_error_message(const boost::program_options::error& e) {
  auto* named = dynamic_cast<const boost::program_options::error_with_option_name*>(&e);
  if (!named) return e.what();
  auto& mutable_named = const_cast<boost::program_options::error_with_option_name&>(*named);
  for (auto [key, value] : detail::OptionErrorAccess::substitutions(*named)) {
    const std::string token = "%" + key + "%", broken = "%" + key + " %";
    bool changed = false;
    for (std::size_t at = value.find(token); at != std::string::npos; at = value.find(token, at)) {
      value.replace(at, token.size(), broken);
      changed = true;
    }
    if (changed) mutable_named.set_substitute(key, value);
  }
  return e.what();
}

}  // namespace aet
