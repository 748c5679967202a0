// Atom models for the evaluation tests (test_evaluate, test_evaluate_cli): an irregular fcc blob
// whose registration is unique, and a model moved by a matrix and a shift.
#pragma once

#include <cstddef>

#include "aet/core/atoms.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet::test {

constexpr double kA = 3.92;  // Pt lattice constant, Angstrom

// An irregular fcc blob of exactly n atoms: the n lattice sites with the lowest score of an
// off-centre, skewed ellipsoid. No signed axis permutation maps it onto itself, so the correct
// registration is unique and can be checked exactly. Every seventh atom is Ni.
AtomModel blob(std::size_t n);

// Every position p of `in` moved to M p + shift.
AtomModel mapped(const AtomModel& in, const Mat3& M, const Vec3& shift);

// The matrix with rows a, b, c.
Mat3 rows(const Vec3& a, const Vec3& b, const Vec3& c);

}  // namespace aet::test
