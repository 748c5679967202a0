// `aet evaluate`: two model files scored, the options that turn registration off, and bad input
// (evaluate_fixtures.hpp: the models).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "aet/io/xyz.hpp"
#include "support/cli_support.hpp"
#include "support/evaluate_fixtures.hpp"

namespace aet {
namespace {

using test::blob;
using test::mapped;
using test::rows;

double json_value(const std::string& js, const std::string& key) {
  const std::string tag = "\"" + key + "\": ";
  const auto at = js.find(tag);
  if (at == std::string::npos) return std::nan("");
  return std::strtod(js.c_str() + at + tag.size(), nullptr);
}

TEST(EvaluateCli, ScoresTwoFiles) {
  test::TempDir tmp;
  const AtomModel truth = blob(200);
  AtomModel traced =
      mapped(truth, rows(Vec3(-1, 0, 0), Vec3(0, 1, 0), Vec3(0, 0, 1)), Vec3(12.3, -4.1, 7.7));
  std::vector<bool> keep(200, true);
  keep[10] = keep[20] = false;
  traced.filter(keep);
  write_xyz(tmp.file("truth.xyz"), truth);
  write_xyz(tmp.file("traced.xyz"), traced);
  const std::string files =
      "evaluate --quiet --traced " + tmp.file("traced.xyz") + " --truth " + tmp.file("truth.xyz");
  auto r = test::run_aet(files + " --out " + tmp.file("metrics.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_DOUBLE_EQ(json_value(r.output, "recall"), 0.99);
  EXPECT_DOUBLE_EQ(json_value(r.output, "precision"), 1.0);
  EXPECT_DOUBLE_EQ(json_value(r.output, "matched"), 198.0);
  EXPECT_NE(r.output.find("\"permutation\": \"-x y z\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"truth_file\""), std::string::npos) << r.output;
  EXPECT_EQ(test::read_text(tmp.file("metrics.json")), r.output);

  r = test::run_aet(files + " --no-permutations --radius 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(json_value(r.output, "recall"), 0.95);
  EXPECT_DOUBLE_EQ(json_value(r.output, "match_radius"), 0.5);

  r = test::run_aet(files + " --no-register");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(json_value(r.output, "matched"), 100.0);

  r = test::run_aet("evaluate --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("Usage: aet evaluate"), std::string::npos) << r.output;
}

TEST(EvaluateCli, BadInputExitsTwoNamingTheFile) {
  test::TempDir tmp;
  write_xyz(tmp.file("truth.xyz"), blob(20));
  const std::string missing = tmp.file("no_such_model.xyz");
  auto r = test::run_aet("evaluate --traced " + missing + " --truth " + tmp.file("truth.xyz"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(missing), std::string::npos) << r.output;

  test::write_text(tmp.file("empty.xyz"), "0\nProperties=species:S:1:pos:R:3\n");
  r = test::run_aet("evaluate --traced " + tmp.file("empty.xyz") + " --truth " +
                    tmp.file("truth.xyz") + " --out " + tmp.file("m.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(tmp.file("empty.xyz")), std::string::npos) << r.output;
  EXPECT_FALSE(test::file_exists(tmp.file("m.json")));

  r = test::run_aet("evaluate --traced " + tmp.file("truth.xyz") + " --truth " +
                    tmp.file("truth.xyz") + " --radius -1");
  EXPECT_EQ(r.exit_code, 2);
  r = test::run_aet("evaluate --truth " + tmp.file("truth.xyz"));
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace aet
