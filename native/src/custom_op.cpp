// ONNX Runtime custom-op library: RegisterCustomOps adds domain `mambast` with SelectiveScan
// (version 1) for the CPU execution provider, and for the CUDA one when built with MAMBAST_OPS_CUDA.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#include <onnxruntime_lite_custom_op.h>
#undef ORT_API_MANUAL_INIT

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "selective_scan.h"

#ifdef MAMBAST_OPS_CUDA
#include "../cuda/selective_scan_cuda.h"
#endif

#if defined(_WIN32)
#define MB_EXPORT __declspec(dllexport)
#else
#define MB_EXPORT __attribute__((visibility("default")))
#endif

namespace {

using Ort::Custom::Tensor;

struct Attrs {
  int64_t k = 0, din = 0, n = 0, softplus = 1;
  std::string error;

  explicit Attrs(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    try {
      k = ki.GetAttribute<int64_t>("k");
      din = ki.GetAttribute<int64_t>("d_inner");
      n = ki.GetAttribute<int64_t>("d_state");
    } catch (const Ort::Exception& e) {
      error = std::string("SelectiveScan: missing attribute (k, d_inner, d_state are required): ") + e.what();
      return;
    }
    try {
      softplus = ki.GetAttribute<int64_t>("delta_softplus");
    } catch (const Ort::Exception&) {
      softplus = 1;
    }
    if (k <= 0 || din <= 0 || n <= 0 || n > mambast::kMaxState)
      error = "SelectiveScan: attributes must satisfy k > 0, d_inner > 0, 0 < d_state <= " +
              std::to_string(mambast::kMaxState) + " (got k=" + std::to_string(k) + ", d_inner=" +
              std::to_string(din) + ", d_state=" + std::to_string(n) + ")";
  }

  static std::string Dims(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  }

  // Checks every input shape against the attributes; fills `a` (pointers excluded) or returns a message.
  std::string Check(const Tensor<float>& u, const Tensor<float>& delta, const Tensor<float>& A,
                    const Tensor<float>& B, const Tensor<float>& C, const Tensor<float>& D,
                    const Tensor<float>& bias, mambast::ScanArgs& a) const {
    if (!error.empty()) return error;
    const auto su = u.Shape();
    const int64_t kd = k * din;
    if (su.size() != 3 || su[1] != kd)
      return "SelectiveScan: u must be [batch, k*d_inner=" + std::to_string(kd) + ", L], got " + Dims(su);
    const int64_t bt = su[0], L = su[2];
    auto expect = [](const char* name, const std::vector<int64_t>& got, const std::vector<int64_t>& want) {
      return got == want ? std::string() : std::string("SelectiveScan: ") + name + " must be " + Dims(want) + ", got " + Dims(got);
    };
    std::string m;
    if (!(m = expect("delta", delta.Shape(), {bt, kd, L})).empty()) return m;
    if (!(m = expect("A", A.Shape(), {kd, n})).empty()) return m;
    if (!(m = expect("B", B.Shape(), {bt, k, n, L})).empty()) return m;
    if (!(m = expect("C", C.Shape(), {bt, k, n, L})).empty()) return m;
    if (!(m = expect("D", D.Shape(), {kd})).empty()) return m;
    if (!(m = expect("delta_bias", bias.Shape(), {kd})).empty()) return m;
    a.batch = bt;
    a.k = k;
    a.din = din;
    a.n = n;
    a.length = L;
    a.softplus = softplus != 0;
    return {};
  }
};

struct ParallelJob {
  const mambast::ScanArgs* args;
  mambast::Isa isa;
};

void RunOne(void* data, size_t i) {
  auto* job = static_cast<ParallelJob*>(data);
  mambast::RunItems(*job->args, job->isa, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
}

// Checks the inputs against the attributes, allocates y and points `a` at the tensors. `empty` is set
// when there is nothing to compute (zero batch or length); shared by the CPU and CUDA kernels.
Ort::Status BindArgs(Attrs& attrs, const Tensor<float>& u, const Tensor<float>& delta, const Tensor<float>& A,
                     const Tensor<float>& B, const Tensor<float>& C, const Tensor<float>& D,
                     const Tensor<float>& bias, Tensor<float>& y, mambast::ScanArgs& a, bool& empty) {
  std::string msg = attrs.Check(u, delta, A, B, C, D, bias, a);
  if (!msg.empty()) return Ort::Status(msg.c_str(), ORT_INVALID_ARGUMENT);
  a.y = y.Allocate(u.Shape());
  empty = a.batch == 0 || a.length == 0;
  if (empty) return Ort::Status(nullptr);
  a.u = u.Data();
  a.delta = delta.Data();
  a.A = A.Data();
  a.B = B.Data();
  a.C = C.Data();
  a.D = D.Data();
  a.delta_bias = bias.Data();
  return Ort::Status(nullptr);
}

struct SelectiveScanCpu {
  Attrs attrs;
  SelectiveScanCpu(const OrtApi*, const OrtKernelInfo* info) : attrs(info) {}

  Ort::Status Compute(OrtKernelContext* ctx, const Tensor<float>& u, const Tensor<float>& delta,
                      const Tensor<float>& A, const Tensor<float>& B, const Tensor<float>& C,
                      const Tensor<float>& D, const Tensor<float>& bias, Tensor<float>& y) {
    mambast::ScanArgs a{};
    bool empty = false;
    Ort::Status bound = BindArgs(attrs, u, delta, A, B, C, D, bias, y, a, empty);
    if (!bound.IsOK() || empty) return bound;
    const mambast::Isa isa = mambast::SelectIsa();
    const int64_t items = mambast::WorkItems(a, isa);
    ParallelJob job{&a, isa};
    // the session's intra-op thread pool (SessionOptions.IntraOpNumThreads); serial if it has none
    OrtStatus* st = Ort::GetApi().KernelContext_ParallelFor(ctx, RunOne, static_cast<size_t>(items), 0, &job);
    if (st != nullptr) {
      Ort::GetApi().ReleaseStatus(st);
      mambast::RunItems(a, isa, 0, items);
    }
    return Ort::Status(nullptr);
  }
};

#ifdef MAMBAST_OPS_CUDA
struct SelectiveScanCuda {
  Attrs attrs;
  SelectiveScanCuda(const OrtApi*, const OrtKernelInfo* info) : attrs(info) {}

  Ort::Status Compute(OrtKernelContext* ctx, const Tensor<float>& u, const Tensor<float>& delta,
                      const Tensor<float>& A, const Tensor<float>& B, const Tensor<float>& C,
                      const Tensor<float>& D, const Tensor<float>& bias, Tensor<float>& y) {
    mambast::ScanArgs a{};
    bool empty = false;
    Ort::Status bound = BindArgs(attrs, u, delta, A, B, C, D, bias, y, a, empty);
    if (!bound.IsOK() || empty) return bound;
    void* stream = Ort::KernelContext(ctx).GetGPUComputeStream();
    std::string err = mambast::cuda::LaunchSelectiveScan(a, stream);
    if (!err.empty()) return Ort::Status(err.c_str(), ORT_EP_FAIL);
    return Ort::Status(nullptr);
  }
};
#endif

std::mutex g_mutex;
std::vector<Ort::CustomOpDomain>& Domains() {
  static auto* domains = new std::vector<Ort::CustomOpDomain>();  // alive as long as any session
  return *domains;
}

}  // namespace

extern "C" MB_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {  // runtime older than the headers; CreateStatus is in every API version
    return api_base->GetApi(1)->CreateStatus(ORT_FAIL, "libmambast_ops needs ONNX Runtime >= 1.29");
  }
  Ort::InitApi(api);
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> cpu_op{
      Ort::Custom::CreateLiteCustomOp<SelectiveScanCpu>("SelectiveScan", "CPUExecutionProvider", 1, 1)};
#ifdef MAMBAST_OPS_CUDA
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> cuda_op{
      Ort::Custom::CreateLiteCustomOp<SelectiveScanCuda>("SelectiveScan", "CUDAExecutionProvider", 1, 1)};
#endif
  try {
    Ort::CustomOpDomain domain{"mambast"};
    domain.Add(cpu_op.get());
#ifdef MAMBAST_OPS_CUDA
    domain.Add(cuda_op.get());
#endif
    Ort::UnownedSessionOptions(options).Add(domain);
    std::lock_guard<std::mutex> lock(g_mutex);
    Domains().push_back(std::move(domain));
  } catch (const Ort::Exception& e) {
    return api->CreateStatus(ORT_FAIL, e.what());
  }
  return nullptr;
}
