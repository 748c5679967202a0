// The readers the fuzzers drive, one entry per reader, shared by the libFuzzer harnesses
// (fuzz_main.cpp, built by scripts/fuzz.sh) and by the corpus replay in the unit tests
// (test_hostile_input.cpp), so that both call exactly the same code.
#pragma once

#include <string>
#include <vector>

namespace aet::fuzz {

// The HDF5 readers either as users get them (the parse checked first in a child process) or the
// parse alone in this process (what the fuzzer must see to find the library's crashes).
enum class Hdf5Mode { guarded, in_process };

// mrc, angles, xyz, config, result, weights, training_set.
const std::vector<std::string>& reader_names();

// Reads the file at `path` with the reader `reader`. Returns normally when the file was read,
// throws InputError (or the config parser's boost::program_options::error, which aet turns into
// exit 2 as well) when it was refused. A reader that accepts a file and then breaks a promise
// (xyz: reading back what it wrote gives another model) throws std::logic_error.
void exercise(const std::string& reader, const std::string& path, Hdf5Mode mode);

}  // namespace aet::fuzz
