#include "model/bnb_weight.h"

#include <cmath>
#include <cstring>
#include <sstream>
#include <type_traits>

#include "error.h"
#include "quant/nf4_tables.h"

namespace ps {

const std::vector<std::string>& bnb_companion_suffixes() {
  static const std::vector<std::string> s = {".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
                                             ".quant_state.bitsandbytes__nf4"};
  return s;
}

namespace {

size_t element_size(DType t) { return t == DType::F32 ? 4 : t == DType::U8 ? 1 : 2; }
const char* dtype_name(DType t) {
  return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : t == DType::BF16 ? "BF16" : "U8";
}
int64_t count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The bytes of one tensor, checked for dtype, element count and file size.
const uint8_t* tensor_bytes(const WeightRef& r, DType want, int64_t elements, const std::string& owner,
                            const std::function<std::shared_ptr<MappedFile>(const std::string&)>& file_of) {
  if (r.dtype != want)
    throw Error("tensor \"" + r.name + "\" in " + r.file + " is " + dtype_name(r.dtype) + " but a bitsandbytes " +
                "4-bit weight stores it as " + dtype_name(want) + " (is \"" + owner + "\" really bitsandbytes NF4?)");
  if (count(r.shape) != elements)
    throw Error("tensor \"" + r.name + "\" in " + r.file + " has " + std::to_string(count(r.shape)) +
                " elements but the quant_state of \"" + owner + "\" implies " + std::to_string(elements) +
                ": the checkpoint is inconsistent, save it again with bitsandbytes");
  auto f = file_of(r.file);
  const uint64_t bytes = static_cast<uint64_t>(elements) * element_size(want);
  if (r.offset > f->size() || f->size() - r.offset < bytes)
    throw Error("weights file " + r.file + " is too short for tensor \"" + r.name + "\": the download may be incomplete");
  return f->data() + r.offset;
}

template <typename T>
std::vector<T> copy_of(const uint8_t* p, int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  std::memcpy(v.data(), p, v.size() * sizeof(T));
  return v;
}

// Checks every tensor of the weight; with `copy`, copies its bytes out of the mapping too.
BnbWeight read_bnb_weight(const WeightRef& ref, const std::vector<int64_t>& expected_shape,
                          const std::map<std::string, const WeightRef*>& refs,
                          const std::function<std::shared_ptr<MappedFile>(const std::string&)>& file_of, bool copy) {
  const Nf4QuantState& st = *ref.nf4;
  if (st.shape != expected_shape || st.shape.size() != 2) {
    std::ostringstream o;
    o << "tensor \"" << ref.name << "\" in " << ref.file << ": its bitsandbytes quant_state has shape [";
    for (size_t i = 0; i < st.shape.size(); ++i) o << (i ? ", " : "") << st.shape[i];
    o << "] but the model config needs [" << expected_shape[0] << ", " << expected_shape[1]
      << "] (is config.json from the same model?)";
    throw Error(o.str());
  }
  nf4_check_blocksize(st.blocksize);
  const int64_t n = st.shape[0] * st.shape[1];
  const int64_t blocks = (n + st.blocksize - 1) / st.blocksize;
  auto companion = [&](const char* suffix) -> const WeightRef& {
    auto it = refs.find(ref.name + suffix);
    if (it == refs.end())
      throw Error("the bitsandbytes 4-bit weight \"" + ref.name + "\" in " + ref.file + " has no \"" + ref.name +
                  suffix + "\" tensor: the checkpoint is incomplete, save or download it again");
    return *it->second;
  };
  // (checking only: the sizes are checked by tensor_bytes, nothing is copied)
  auto copy_if = [copy](auto* type, const uint8_t* p, int64_t n) {
    using T = std::remove_pointer_t<decltype(type)>;
    return copy ? copy_of<T>(p, n) : std::vector<T>();
  };
  BnbWeight out;
  auto q = std::make_shared<Nf4Quantized>();
  q->rows = st.shape[0];
  q->cols = st.shape[1];
  q->blocksize = st.blocksize;
  q->codes = copy_if((uint8_t*)nullptr, tensor_bytes(ref, DType::U8, (n + 1) / 2, ref.name, file_of), (n + 1) / 2);

  // quant_map must be NF4's table: the kernels decode with it (an FP4 map would not be).
  const WeightRef& qm = companion(".quant_map");
  const std::vector<float> map = copy_of<float>(tensor_bytes(qm, DType::F32, 16, ref.name, file_of), 16);
  const float* nf4 = nf4_code_table();
  for (int i = 0; i < 16; ++i)
    if (!(std::fabs(map[i] - nf4[i]) <= 1e-6f))
      throw Error("tensor \"" + qm.name + "\" in " + qm.file + " is not the NF4 code table (entry " + std::to_string(i) +
                  " is " + std::to_string(map[i]) + ", NF4 has " + std::to_string(nf4[i]) +
                  "): only bitsandbytes NF4 weights can be loaded; quantize the original model with nf4 instead");

  const WeightRef& am = companion(".absmax");
  if (st.double_quant) {
    if (st.nested_blocksize < 1) throw Error("tensor \"" + ref.name + "\": quant_state nested_blocksize must be positive");
    const int64_t nested = (blocks + st.nested_blocksize - 1) / st.nested_blocksize;
    q->absmax_codes = copy_if((uint8_t*)nullptr, tensor_bytes(am, DType::U8, blocks, ref.name, file_of), blocks);
    const WeightRef& na = companion(".nested_absmax");
    q->nested_absmax = copy_if((float*)nullptr, tensor_bytes(na, DType::F32, nested, ref.name, file_of), nested);
    q->nested_offset = st.nested_offset;
    const WeightRef& nm = companion(".nested_quant_map");
    out.absmax_map = copy_if((float*)nullptr, tensor_bytes(nm, DType::F32, 256, ref.name, file_of), 256);
    if (st.nested_blocksize != kNf4NestedBlocksize)
      throw Error("tensor \"" + ref.name + "\": quant_state nested_blocksize is " + std::to_string(st.nested_blocksize) +
                  "; bitsandbytes always uses 256 (the checkpoint was not written by bitsandbytes)");
  } else {
    q->absmax = copy_if((float*)nullptr, tensor_bytes(am, DType::F32, blocks, ref.name, file_of), blocks);
  }
  out.q = std::move(q);
  return out;
}

}  // namespace

void check_bnb_weight(const WeightRef& ref, const std::vector<int64_t>& expected_shape,
                      const std::map<std::string, const WeightRef*>& refs,
                      const std::function<std::shared_ptr<MappedFile>(const std::string&)>& file_of) {
  read_bnb_weight(ref, expected_shape, refs, file_of, false);
}

BnbWeight take_bnb_weight(const WeightRef& ref, const std::vector<int64_t>& expected_shape,
                          const std::map<std::string, const WeightRef*>& refs,
                          const std::function<std::shared_ptr<MappedFile>(const std::string&)>& file_of) {
  return read_bnb_weight(ref, expected_shape, refs, file_of, true);
}

}  // namespace ps
