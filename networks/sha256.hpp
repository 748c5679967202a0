// SHA-256 of a byte range (FIPS 180-4), for the checksums of the weights in model files: a
// digest anyone can recompute with a standard tool (Python: hashlib.sha256).
#pragma once

#include <cstddef>
#include <string>

namespace aet::nn::detail {

// Lower-case hexadecimal digest (64 characters) of `size` bytes at `data`.
std::string sha256_hex(const void* data, std::size_t size);

}  // namespace aet::nn::detail
