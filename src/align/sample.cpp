// Sample kind: isolated particle or film, from where the views' signal lies.
#include "aet/align/align.hpp"
#include "aet/core/error.hpp"
#include "align_detail.hpp"

namespace aet {

const char* sample_name(SampleKind kind) {
  switch (kind) {
    case SampleKind::automatic: return "auto";
    case SampleKind::particle: return "particle";
    case SampleKind::film: return "film";
  }
  return "?";
}

SampleKind parse_sample(const std::string& name) {
  if (name == "auto") return SampleKind::automatic;
  if (name == "particle") return SampleKind::particle;
  if (name == "film") return SampleKind::film;
  fail_input("--sample must be auto, particle or film (got '" + name + "')");
}

SampleDetection detect_sample(const Array3& views) {
  // Background subtracted as for a particle: a film's signal survives it (its lowest pixels are
  // still film), a particle's flat or sloped background does not. No normalisation: it does not
  // move signal between frame and centre.
  PreprocessOptions p;
  p.normalise = false;
  SampleDetection d;
  detail::centres_of_mass(preprocess_views(views, p), &d.border_fraction);
  d.kind = d.border_fraction >= detail::kFilmBorderFraction ? SampleKind::film : SampleKind::particle;
  return d;
}

}  // namespace aet
