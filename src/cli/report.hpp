// The run report (docs/report.md): report.html of a pipeline run folder, made by the project's
// Python module python/aet_report (matplotlib figures embedded as PNG). `aet report` and the end
// of `aet pipeline` call it.
#pragma once

#include <string>

namespace aet::cli {

// Writes the report of run folder `dir` to `html` by running the module with the Python named by
// $AET_PYTHON, else the one found when aet was built (Debian's /usr/bin/python3 first). InputError
// (exit 2) for a folder that is not a run folder (naming it), a Python that cannot be started, or
// one without matplotlib, numpy or mrcfile (naming the Debian packages); InternalError when the
// module fails otherwise. The module's messages are in the error.
void write_run_report(const std::string& dir, const std::string& html);

}  // namespace aet::cli
