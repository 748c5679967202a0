// Shared machinery of the `aet` subcommands: parsing with INI config files, the preamble every
// command starts with, and the output directory that appears whole or not at all. The option
// groups are in cli/options.hpp; the text, JSON and file helpers the commands write with come in
// here too.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "aet/core/format.hpp"
#include "aet/core/json.hpp"
#include "aet/io/atomic_file.hpp"

namespace aet::cli {

namespace po = boost::program_options;

// What every subcommand receives: its own arguments and the full command line (for provenance).
struct Invocation {
  std::string name;               // subcommand name
  std::vector<std::string> args;  // arguments after the subcommand
  std::string command_line;       // the whole command line, shell-quoted
};

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const Invocation&);
};

struct Parsed {
  po::variables_map vm;
  bool help = false;
  std::string effective_config;  // every option's final value, "key = value" per line
};

// Parses the command line, then the --config INI file (the command line wins), applies
// --threads/--quiet/--verbose, and validates. Usage problems throw InputError (exit code 2).
Parsed parse(const Invocation& inv, const po::options_description& desc,
             const po::positional_options_description* positional = nullptr);

// Prints "Usage: aet NAME ..." with the description and the option table to stdout.
void print_usage(const Invocation& inv, const std::string& synopsis, const std::string& about,
                 const po::options_description& desc);

// What the start of a command needs to know: its --help text, whether it needs LibTorch, and the
// options it cannot run without, each as "KEY" or "KEY WHAT" ("out DIR": without --out the
// error is "--out DIR is required"), checked in order.
struct Preamble {
  std::string synopsis = {};
  std::string about = {};
  std::vector<std::string> required = {};
  bool needs_torch = false;  // nn::require_torch("aet NAME") after --help, before `required`
  const po::positional_options_description* positional = nullptr;
};

// The start every command shares: parse(), then on --help the usage (and `help` set: the command
// returns 0), else the LibTorch check and the required options.
Parsed parse_or_help(const Invocation& inv, const po::options_description& desc,
                     const Preamble& pre);
// Fails with "--KEY WHAT is required" for the first entry of `required` that was not given.
void require_options(const po::variables_map& vm, const std::vector<std::string>& required);

// An output directory filled in a hidden staging folder and moved into place by commit():
// a failed or interrupted run leaves neither partial files nor a directory it created. `names`
// are the files the command may write there: the constructor, called before any work, refuses
// (InputError naming the path) a directory, link or anything but a plain file in the way of one,
// since commit() replaces only files; it also removes the staging folders of dead runs. Without
// `names` that check waits until commit() (still before anything is moved): give them.
class OutputDir {
 public:
  explicit OutputDir(const std::string& dir, std::vector<std::string> names = {});
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  std::string path(const std::string& name) const;  // where to write `name` (one of `names`)
  std::string final_path(const std::string& name) const;
  const std::string& staging_dir() const { return staging_; }  // the folder path() is in
  void commit();

 private:
  std::string dir_, staging_;
  std::vector<std::string> names_;
  InterruptCleanup created_guard_, staging_guard_;
  bool created_dir_ = false, committed_ = false;
};

// Checks, before any work, that `path` (the value of --OPTION) can take an output file: given,
// ending in one of `extensions` (lower case with the dot; none: any name), not a directory or
// anything but a plain file, in a folder that exists (or can be created) and is writable.
void check_output_file(const std::string& option, const std::string& path,
                       const std::vector<std::string>& extensions, const std::string& what);
// Creates the folder of output file `path` (and its parents) where missing, just before the file
// is written: the folder check_output_file accepted as one that can be created.
void ensure_parent_directory(const std::string& path);
// Checks the same for an output folder aet writes into directly (--out of aet train).
void check_output_directory(const std::string& option, const std::string& dir);
// The extensions an MRC volume or stack is commonly given (aet writes MRC under any of them).
const std::vector<std::string>& mrc_extensions();

// An error message as the user should see it: the hidden staging folder left out of the paths
// it names ("d/.aet-partial-123/atoms.xyz" -> "d/atoms.xyz").
std::string user_paths(const std::string& message);

// The log line of a grid search of the views' rotations: the views it moved by more than a degree.
std::string angle_search_summary(const std::vector<double>& change_deg, double range_deg);

}  // namespace aet::cli
