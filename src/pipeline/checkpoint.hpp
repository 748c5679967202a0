// The pipeline's checkpoints (PipelineOptions::checkpoint_dir, `aet pipeline --checkpoint DIR`):
// each long stage (alignment, reconstruction, network) leaves its result in DIR when it finishes,
// under a key that chains the input's fingerprint with every earlier stage's settings; a later run
// with the same inputs and settings takes the result from DIR instead of computing it again (a
// run stopped by Slurm's time limit, requeued, goes on where it was). A stage's key file is
// written last, so a stage killed while saving is simply computed again.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "aet/align/align.hpp"
#include "aet/core/array.hpp"
#include "aet/core/json.hpp"
#include "aet/geometry/rotation.hpp"
#include "aet/io/mrc.hpp"
#include "aet/recon/solvers.hpp"

namespace aet::detail {

class Checkpoint {
 public:
  // `dir` empty: no checkpoints (every call below is a no-op or false). The fingerprint covers
  // aet's version, the views (dimensions, pixel size, every value), the nominal angles, the given
  // geometry and `settings` (every setting that changes a result, as text).
  // `stage_settings`: the settings that change one stage (and, by the chain, the later ones).
  // `log`, when set, is told when DIR holds a stage's result for other input or settings.
  Checkpoint(const std::string& dir, const Array3& views, const std::vector<Euler>& nominal,
             const TiltGeometry& geometry, const std::string& settings,
             std::map<std::string, std::string> stage_settings = {},
             std::function<void(const std::string&)> log = nullptr);
  bool enabled() const { return !dir_.empty(); }

  // Starts stage `stage`: its key, chained after the previous stage's with the stage's own
  // settings. Returns whether DIR holds this stage's result under that key.
  bool begin(const std::string& stage);

  // The stage's files (read after begin() returned true, written before done()).
  void save_array(const std::string& name, const Array3& a, MrcKind kind) const;
  Array3 load_array(const std::string& name) const;
  void save_geometry(const std::string& name, const TiltGeometry& g) const;
  TiltGeometry load_geometry(const std::string& name) const;
  void save_json(const std::string& name, const Json& j) const;
  Json load_json(const std::string& name) const;
  void save_numbers(const std::string& name, const std::vector<double>& v) const;
  std::vector<double> load_numbers(const std::string& name) const;

  // Progress inside the current stage (the reconstruction, every PipelineOptions::checkpoint_every
  // iterations), saved with the functions above under names of its own: begin_progress removes
  // the progress key before anything is saved over it and end_progress writes it last, so that
  // progress half saved is never taken; has_progress says whether DIR holds this key's progress.
  void begin_progress() const;
  void end_progress() const;
  bool has_progress() const;

  // Marks the stage done (its key file, written last).
  void done() const;
  // The stages taken from DIR so far.
  const std::vector<std::string>& resumed() const { return resumed_; }
  void note_resumed() { resumed_.push_back(stage_); }

 private:
  std::string file(const std::string& name) const;
  std::string dir_, key_, stage_;
  std::map<std::string, std::string> stage_settings_;
  std::function<void(const std::string&)> log_;
  std::vector<std::string> resumed_;
};

// A plain RESIRE or SIRT solve (not accelerated) in parts, which gradient descent makes the same
// solve as one uninterrupted run: a part ends every `every` iterations (0: never) and after
// `snapshot_at` (0: never), where `snapshot` receives the volume (the network's input recipe).
// With `every` > 0 and `ck` enabled, the progress after each part is kept in the current stage
// of `ck` and a solve whose progress DIR holds goes on from it (said through `log`).
ReconResult reconstruct_in_parts(const Array3& views, const TiltGeometry& geometry,
                                 const ReconOptions& ro, const Checkpoint& ck, int every,
                                 int snapshot_at, Array3* snapshot,
                                 const std::function<void(const std::string&)>& log);

// The SHA-256 digest of an array's values and voxel size (an input that enters a key by content).
std::string array_digest(const Array3& a);

// The alignment as the checkpointed stage "align" (aet align, the pipeline): its whole result
// from DIR when DIR holds one for this key (returns true), else align_tilt_series, going on after
// the last round DIR holds (said through `log`), with its rounds and its result saved.
bool checkpointed_alignment(Checkpoint& ck, const Array3& views, const std::vector<Euler>& nominal,
                            AlignOptions opt, AlignResult& result,
                            const std::function<void(const std::string&)>& log);

}  // namespace aet::detail
