// ONNX Runtime (CPU) runner for graphs that use mambast::SelectiveScan; used by the Python tests
// (model/tests/test_fused*.py) and the benchmark (docs/benchmarks/fused-scan.md).
// Usage: mambast_ort_run MODEL.onnx OUT_DIR [--ops LIB.so] [--threads N] [--repeat R] [--no-write]
//                        name=file.npy ...
// Reads float32/int64 .npy (v1.0, little-endian, C order); writes every output as OUT_DIR/<name>.npy.
// --repeat R runs R more times after the first and prints "first_ms=.. median_ms=.. min_ms=..".
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Npy {
  std::string descr;
  std::vector<int64_t> shape;
  std::vector<char> data;
};

Npy ReadNpy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  char magic[8];
  f.read(magic, 8);
  uint16_t hlen = 0;
  f.read(reinterpret_cast<char*>(&hlen), 2);
  std::string header(hlen, '\0');
  f.read(&header[0], hlen);
  Npy n;
  auto d = header.find("'descr': '") + 10;
  n.descr = header.substr(d, header.find('\'', d) - d);
  if (header.find("'fortran_order': False") == std::string::npos) throw std::runtime_error("fortran order in " + path);
  auto s = header.find('(', header.find("'shape'")) + 1;
  std::stringstream ss(header.substr(s, header.find(')', s) - s));
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(' ') == std::string::npos) continue;
    n.shape.push_back(std::stoll(tok));
  }
  int64_t count = 1;
  for (auto v : n.shape) count *= v;
  size_t esz = (n.descr == "<f4") ? 4 : (n.descr == "<i8") ? 8 : 0;
  if (!esz) throw std::runtime_error("unsupported dtype " + n.descr + " in " + path);
  n.data.resize(count * esz);
  f.read(n.data.data(), static_cast<std::streamsize>(n.data.size()));
  if (!f) throw std::runtime_error("truncated " + path);
  return n;
}

void WriteNpy(const std::string& path, const float* p, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t count = 1;
  for (auto v : shape) {
    dims += std::to_string(v) + ",";
    count *= v;
  }
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t hlen = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&hlen), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(p), count * 4);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: mambast_ort_run MODEL OUT_DIR [--ops LIB] [--threads N] [--repeat R] [--no-write] name=file.npy...\n";
    return 2;
  }
  try {
    std::string ops;
    int threads = 1, repeat = 0;
    bool write = true;
    std::vector<std::string> names;
    std::vector<Npy> arrays;
    for (int i = 3; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--ops" && i + 1 < argc) { ops = argv[++i]; continue; }
      if (a == "--threads" && i + 1 < argc) { threads = std::stoi(argv[++i]); continue; }
      if (a == "--repeat" && i + 1 < argc) { repeat = std::stoi(argv[++i]); continue; }
      if (a == "--no-write") { write = false; continue; }
      auto eq = a.find('=');
      if (eq == std::string::npos) throw std::runtime_error("bad argument " + a);
      names.push_back(a.substr(0, eq));
      arrays.push_back(ReadNpy(a.substr(eq + 1)));
    }
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "mambast_ort_run");
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(threads);
    so.SetInterOpNumThreads(1);
    if (!ops.empty()) so.RegisterCustomOpsLibrary(ops.c_str());
    Ort::Session session(env, argv[1], so);
    Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<Ort::Value> inputs;
    for (auto& n : arrays) {
      if (n.descr == "<f4")
        inputs.push_back(Ort::Value::CreateTensor<float>(mem, reinterpret_cast<float*>(n.data.data()), n.data.size() / 4, n.shape.data(), n.shape.size()));
      else
        inputs.push_back(Ort::Value::CreateTensor<int64_t>(mem, reinterpret_cast<int64_t*>(n.data.data()), n.data.size() / 8, n.shape.data(), n.shape.size()));
    }
    std::vector<const char*> in_names;
    for (auto& s : names) in_names.push_back(s.c_str());
    Ort::AllocatorWithDefaultOptions alloc;
    std::vector<std::string> out_names_s;
    for (size_t i = 0; i < session.GetOutputCount(); ++i) out_names_s.push_back(session.GetOutputNameAllocated(i, alloc).get());
    std::vector<const char*> out_names;
    for (auto& s : out_names_s) out_names.push_back(s.c_str());
    auto run = [&] {
      return session.Run(Ort::RunOptions{nullptr}, in_names.data(), inputs.data(), inputs.size(), out_names.data(), out_names.size());
    };
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    auto outs = run();
    double first = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    if (repeat > 0) {
      std::vector<double> ms;
      for (int r = 0; r < repeat; ++r) {
        auto t = clock::now();
        outs = run();
        ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t).count());
      }
      std::sort(ms.begin(), ms.end());
      std::cout << "first_ms=" << first << " median_ms=" << ms[ms.size() / 2] << " min_ms=" << ms.front() << "\n";
    }
    if (write) {
      for (size_t i = 0; i < outs.size(); ++i) {
        auto info = outs[i].GetTensorTypeAndShapeInfo();
        WriteNpy(std::string(argv[2]) + "/" + out_names_s[i] + ".npy", outs[i].GetTensorData<float>(), info.GetShape());
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
