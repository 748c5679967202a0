#include "aet/core/elements.hpp"

#include "aet/core/error.hpp"

namespace aet {

const std::vector<Element>& all_elements() {
  // Lattice constants: room-temperature values (Kittel; Davey, Phys. Rev. 25, 753).
  static const std::vector<Element> table = {
      {"H", 1, Lattice::other, 0.0, 0.0},       {"He", 2, Lattice::other, 0.0, 0.0},
      {"Li", 3, Lattice::bcc, 3.51, 0.0},       {"Be", 4, Lattice::hcp, 2.2858, 3.5843},
      {"B", 5, Lattice::other, 0.0, 0.0},       {"C", 6, Lattice::other, 0.0, 0.0},
      {"N", 7, Lattice::other, 0.0, 0.0},       {"O", 8, Lattice::other, 0.0, 0.0},
      {"F", 9, Lattice::other, 0.0, 0.0},       {"Ne", 10, Lattice::fcc, 4.429, 0.0},
      {"Na", 11, Lattice::bcc, 4.2906, 0.0},    {"Mg", 12, Lattice::hcp, 3.2094, 5.2108},
      {"Al", 13, Lattice::fcc, 4.0495, 0.0},    {"Si", 14, Lattice::other, 0.0, 0.0},
      {"P", 15, Lattice::other, 0.0, 0.0},      {"S", 16, Lattice::other, 0.0, 0.0},
      {"Cl", 17, Lattice::other, 0.0, 0.0},     {"Ar", 18, Lattice::fcc, 5.256, 0.0},
      {"K", 19, Lattice::bcc, 5.328, 0.0},      {"Ca", 20, Lattice::fcc, 5.588, 0.0},
      {"Sc", 21, Lattice::hcp, 3.3088, 5.268},  {"Ti", 22, Lattice::hcp, 2.9508, 4.6855},
      {"V", 23, Lattice::bcc, 3.0399, 0.0},     {"Cr", 24, Lattice::bcc, 2.91, 0.0},
      {"Mn", 25, Lattice::other, 0.0, 0.0},     {"Fe", 26, Lattice::bcc, 2.8665, 0.0},
      {"Co", 27, Lattice::hcp, 2.5071, 4.0695}, {"Ni", 28, Lattice::fcc, 3.524, 0.0},
      {"Cu", 29, Lattice::fcc, 3.6149, 0.0},    {"Zn", 30, Lattice::hcp, 2.6649, 4.9468},
      {"Ga", 31, Lattice::other, 0.0, 0.0},     {"Ge", 32, Lattice::other, 0.0, 0.0},
      {"As", 33, Lattice::other, 0.0, 0.0},     {"Se", 34, Lattice::other, 0.0, 0.0},
      {"Br", 35, Lattice::other, 0.0, 0.0},     {"Kr", 36, Lattice::fcc, 5.721, 0.0},
      {"Rb", 37, Lattice::bcc, 5.585, 0.0},     {"Sr", 38, Lattice::fcc, 6.0849, 0.0},
      {"Y", 39, Lattice::hcp, 3.6474, 5.7306},  {"Zr", 40, Lattice::hcp, 3.2316, 5.1475},
      {"Nb", 41, Lattice::bcc, 3.3004, 0.0},    {"Mo", 42, Lattice::bcc, 3.147, 0.0},
      {"Tc", 43, Lattice::hcp, 2.735, 4.388},   {"Ru", 44, Lattice::hcp, 2.7059, 4.2815},
      {"Rh", 45, Lattice::fcc, 3.8034, 0.0},    {"Pd", 46, Lattice::fcc, 3.8907, 0.0},
      {"Ag", 47, Lattice::fcc, 4.0853, 0.0},    {"Cd", 48, Lattice::hcp, 2.9794, 5.6186},
      {"In", 49, Lattice::other, 0.0, 0.0},     {"Sn", 50, Lattice::other, 0.0, 0.0},
      {"Sb", 51, Lattice::other, 0.0, 0.0},     {"Te", 52, Lattice::other, 0.0, 0.0},
      {"I", 53, Lattice::other, 0.0, 0.0},      {"Xe", 54, Lattice::fcc, 6.197, 0.0},
      {"Cs", 55, Lattice::bcc, 6.141, 0.0},     {"Ba", 56, Lattice::bcc, 5.028, 0.0},
      {"La", 57, Lattice::other, 0.0, 0.0},     {"Ce", 58, Lattice::fcc, 5.161, 0.0},
      {"Pr", 59, Lattice::other, 0.0, 0.0},     {"Nd", 60, Lattice::other, 0.0, 0.0},
      {"Pm", 61, Lattice::other, 0.0, 0.0},     {"Sm", 62, Lattice::other, 0.0, 0.0},
      {"Eu", 63, Lattice::bcc, 4.581, 0.0},     {"Gd", 64, Lattice::hcp, 3.6336, 5.781},
      {"Tb", 65, Lattice::hcp, 3.6055, 5.6966}, {"Dy", 66, Lattice::hcp, 3.5915, 5.6501},
      {"Ho", 67, Lattice::hcp, 3.5778, 5.6178}, {"Er", 68, Lattice::hcp, 3.5592, 5.585},
      {"Tm", 69, Lattice::hcp, 3.5375, 5.554},  {"Yb", 70, Lattice::fcc, 5.4847, 0.0},
      {"Lu", 71, Lattice::hcp, 3.5052, 5.5494}, {"Hf", 72, Lattice::hcp, 3.1964, 5.0511},
      {"Ta", 73, Lattice::bcc, 3.3013, 0.0},    {"W", 74, Lattice::bcc, 3.1652, 0.0},
      {"Re", 75, Lattice::hcp, 2.761, 4.456},   {"Os", 76, Lattice::hcp, 2.7344, 4.3173},
      {"Ir", 77, Lattice::fcc, 3.839, 0.0},     {"Pt", 78, Lattice::fcc, 3.9242, 0.0},
      {"Au", 79, Lattice::fcc, 4.0782, 0.0},    {"Hg", 80, Lattice::other, 0.0, 0.0},
      {"Tl", 81, Lattice::other, 0.0, 0.0},     {"Pb", 82, Lattice::fcc, 4.9508, 0.0},
      {"Bi", 83, Lattice::other, 0.0, 0.0},     {"Po", 84, Lattice::other, 0.0, 0.0},
      {"At", 85, Lattice::other, 0.0, 0.0},     {"Rn", 86, Lattice::other, 0.0, 0.0},
      {"Fr", 87, Lattice::other, 0.0, 0.0},     {"Ra", 88, Lattice::other, 0.0, 0.0},
      {"Ac", 89, Lattice::other, 0.0, 0.0},     {"Th", 90, Lattice::fcc, 5.0842, 0.0},
      {"Pa", 91, Lattice::other, 0.0, 0.0},     {"U", 92, Lattice::other, 0.0, 0.0},
      {"Np", 93, Lattice::other, 0.0, 0.0},     {"Pu", 94, Lattice::other, 0.0, 0.0},
  };
  return table;
}

const Element* find_element(const std::string& symbol) {
  for (const auto& e : all_elements())
    if (e.symbol == symbol) return &e;
  return nullptr;
}

const Element& element(const std::string& symbol) {
  const Element* e = find_element(symbol);
  if (!e) throw InputError("unknown element symbol '" + symbol + "'");
  return *e;
}

const Element& element_by_z(int z) {
  const auto& t = all_elements();
  if (z < 1 || z > static_cast<int>(t.size()))
    throw InputError("unknown atomic number " + std::to_string(z));
  return t[static_cast<std::size_t>(z - 1)];
}

const char* lattice_name(Lattice l) {
  switch (l) {
    case Lattice::fcc:
      return "fcc";
    case Lattice::bcc:
      return "bcc";
    case Lattice::hcp:
      return "hcp";
    default:
      return "other";
  }
}

}  // namespace aet
