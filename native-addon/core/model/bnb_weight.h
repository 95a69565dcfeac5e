// Taking a linear weight that bitsandbytes saved already quantized to NF4
// (a Hugging Face folder written after load_in_4bit), without re-quantizing:
// the packed codes "…weight" (U8), "…weight.absmax" (fp32, or U8 codes with
// double quantization), "…weight.quant_map" (the 16 NF4 values),
// "…weight.nested_absmax" and "…weight.nested_quant_map" (the dynamic map),
// with the JSON fields of "…weight.quant_state.bitsandbytes__nf4" in
// WeightRef::nf4. The bytes are copied out of the mapping (4-bit sized).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "model/mmap_file.h"
#include "quant/nf4_quantize.h"

namespace ps {

struct BnbWeight {
  std::shared_ptr<Nf4Quantized> q;
  std::vector<float> absmax_map;  // the file's nested_quant_map (double quantization)
};

// `ref` is the U8 weight with ref.nf4 set; `refs` every ref by name (the
// companions are looked up there); `file_of` maps a path to its mapping.
// Throws naming the tensor and what is wrong (missing companion, wrong size,
// a quant_map that is not NF4).
// check_bnb_weight: the same checks, nothing copied (a load checks every
// weight before changing anything, then takes them one at a time, so a device
// backend never holds all of them in host memory at once).
void check_bnb_weight(const WeightRef& ref, const std::vector<int64_t>& expected_shape,
                      const std::map<std::string, const WeightRef*>& refs,
                      const std::function<std::shared_ptr<MappedFile>(const std::string&)>& file_of);
BnbWeight take_bnb_weight(const WeightRef& ref, const std::vector<int64_t>& expected_shape,
                          const std::map<std::string, const WeightRef*>& refs,
                          const std::function<std::shared_ptr<MappedFile>(const std::string&)>& file_of);

// The companion tensor names of a bitsandbytes 4-bit weight (suffixes).
const std::vector<std::string>& bnb_companion_suffixes();

}  // namespace ps
