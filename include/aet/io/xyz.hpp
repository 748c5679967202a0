// Extended XYZ for atom models (the format ASE and OVITO read): line 1 the atom count, line 2
// key=value pairs with Properties=species:S:1:pos:R:3[:name:R:1...], then one atom per line.
// Positions in Angstrom.
#pragma once

#include <string>

#include "aet/core/atoms.hpp"

namespace aet {

// Writes atomically. model.info goes to the comment line (values quoted when needed).
void write_xyz(const std::string& path, const AtomModel& model);

// Reads extended XYZ, or plain XYZ (species x y z) when the comment has no Properties key.
// Integer (I) and logical (L) columns are read as reals. Rejects a truncated file, a count that
// does not match the lines, unknown species, NaN/Inf coordinates.
AtomModel read_xyz(const std::string& path);

}  // namespace aet
