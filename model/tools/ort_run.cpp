// Minimal ONNX Runtime (CPU) runner used by the Python tests to execute exported graphs.
// Usage: ort_run MODEL.onnx OUT_DIR name=file.npy [name=file.npy ...]
// Reads float32/int64 .npy (v1.0, little-endian, C order); writes every output as OUT_DIR/<name>.npy.
#include <onnxruntime_cxx_api.h>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

struct Npy {
  std::string descr;
  std::vector<int64_t> shape;
  std::vector<char> data;
};

static Npy read_npy(const std::string& path) {
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
  if (header.find("'fortran_order': False") == std::string::npos) throw std::runtime_error("fortran order");
  auto s = header.find('(', header.find("'shape'")) + 1;
  std::string dims = header.substr(s, header.find(')', s) - s);
  std::stringstream ss(dims);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(" ") == std::string::npos) continue;
    n.shape.push_back(std::stoll(tok));
  }
  int64_t count = 1;
  for (auto v : n.shape) count *= v;
  size_t esz = (n.descr == "<f4") ? 4 : (n.descr == "<i8") ? 8 : 0;
  if (!esz) throw std::runtime_error("unsupported dtype " + n.descr);
  n.data.resize(count * esz);
  f.read(n.data.data(), n.data.size());
  return n;
}

static void write_npy(const std::string& path, const float* p, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t count = 1;
  for (auto v : shape) { dims += std::to_string(v) + ","; count *= v; }
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t hlen = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&hlen), 2);
  f.write(header.data(), header.size());
  f.write(reinterpret_cast<const char*>(p), count * 4);
}

int main(int argc, char** argv) {
  if (argc < 3) { std::cerr << "usage: ort_run MODEL OUT_DIR name=file.npy...\n"; return 2; }
  try {
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "ort_run");
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(1);
    so.SetInterOpNumThreads(1);
    Ort::Session session(env, argv[1], so);
    Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<Npy> arrays;
    std::vector<std::string> names;
    for (int i = 3; i < argc; ++i) {
      std::string a = argv[i];
      auto eq = a.find('=');
      names.push_back(a.substr(0, eq));
      arrays.push_back(read_npy(a.substr(eq + 1)));
    }
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
    auto outs = session.Run(Ort::RunOptions{nullptr}, in_names.data(), inputs.data(), inputs.size(), out_names.data(), out_names.size());
    for (size_t i = 0; i < outs.size(); ++i) {
      auto info = outs[i].GetTensorTypeAndShapeInfo();
      write_npy(std::string(argv[2]) + "/" + out_names_s[i] + ".npy", outs[i].GetTensorData<float>(), info.GetShape());
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
