// Periodic-table facts the simulator and tracer need: atomic number and the ground-state
// crystal structure with its lattice constants (room temperature, Angstrom).
#pragma once

#include <string>
#include <vector>

namespace aet {

enum class Lattice { fcc, bcc, hcp, other };

struct Element {
  std::string symbol;
  int z = 0;
  Lattice lattice = Lattice::other;
  double a = 0.0;  // lattice constant (Angstrom); 0 when not tabulated
  double c = 0.0;  // hcp c axis (Angstrom)
};

// Throws InputError naming the symbol when unknown. Case-sensitive standard symbols ("Pt").
const Element& element(const std::string& symbol);
const Element* find_element(const std::string& symbol);
const Element& element_by_z(int z);
const std::vector<Element>& all_elements();
const char* lattice_name(Lattice l);

}  // namespace aet
