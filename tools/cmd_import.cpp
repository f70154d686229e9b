// igscope import MODEL.onnx --out MODEL.safetensors [--input-range 0:1|0:255]
//   [--mean R,G,B] [--std R,G,B] [--classes FILE] [--name NAME]
// converts an ONNX model into igscope's model file (docs/importing-onnx.md);
// igscope import MODEL.onnx --dump-onnx OUT.json writes what the protobuf
// reader decoded (nodes, attributes, weights by hash), to compare with
// python3-onnx.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "igscope/error.h"
#include "igscope/import/onnx_import.h"
#include "igscope/import/onnx_proto.h"
#include "igscope/model.h"
#include "igscope/safetensors.h"

namespace igscope::tools {

namespace {

std::vector<std::string> read_classes(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("cannot read the class file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const size_t first = text.find_first_not_of(" \t\r\n");
  std::vector<std::string> names;
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error("the class file '" + path + "' is not valid JSON: " + e.what());
    }
    for (const auto& c : j) {
      if (!c.is_string()) throw Error("the class file '" + path + "' must be a JSON list of strings");
      names.push_back(c.get<std::string>());
    }
    return names;
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

// An external-data reader for files next to the model; a location that
// leaves the model's folder is refused.
std::string read_side_file(const std::filesystem::path& dir, const std::string& location, uint64_t offset, int64_t length) {
  const std::filesystem::path rel(location);
  if (rel.is_absolute() || rel.lexically_normal().string().rfind("..", 0) == 0)
    throw Error("ONNX external data location '" + location + "' is outside the model's folder");
  const std::filesystem::path path = dir / rel;
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open the ONNX external data file '" + path.string() + "'");
  f.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(f.tellg());
  const uint64_t n = length < 0 ? (offset <= size ? size - offset : 0) : static_cast<uint64_t>(length);
  if (offset > size || n > size - offset)
    throw Error("ONNX external data: " + std::to_string(n) + " bytes at offset " + std::to_string(offset) + " of '" +
                path.string() + "', which has " + std::to_string(size));
  std::string bytes(static_cast<size_t>(n), '\0');
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(bytes.data(), static_cast<std::streamsize>(n));
  if (!f) throw Error("cannot read the ONNX external data file '" + path.string() + "'");
  return bytes;
}

}  // namespace

void add_import_command(CLI::App& app) {
  struct Options {
    std::string model, out, dump, range = "0:1", mean, std, classes, name;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("import", "Convert an ONNX model (opsets 11 to 18) into an igscope model file");
  cmd->add_option("model", opt->model, "the .onnx file")->required()->check(CLI::ExistingFile);
  auto* out = cmd->add_option("--out", opt->out, "the igscope model file to write (.safetensors)");
  auto* dump = cmd->add_option("--dump-onnx", opt->dump,
                               "write the decoded ONNX graph as JSON (nodes, attributes, tensors by hash) instead");
  out->excludes(dump);
  cmd->add_option("--input-range", opt->range, "what the model takes per pixel: 0:1 or 0:255")
      ->check(CLI::IsMember({"0:1", "0:255"}))
      ->capture_default_str();
  cmd->add_option("--mean", opt->mean, "per-channel mean the model subtracts, in its input units (R,G,B or one value)");
  cmd->add_option("--std", opt->std, "per-channel standard deviation the model divides by (R,G,B or one value)");
  cmd->add_option("--classes", opt->classes, "class names: one per line, or a JSON list")->check(CLI::ExistingFile);
  cmd->add_option("--name", opt->name, "the model's name (default: the file name without .onnx)");
  cmd->callback([opt] {
    if (opt->out.empty() == opt->dump.empty()) throw Error("import: give --out MODEL.safetensors (or --dump-onnx OUT.json)");
    const std::vector<uint8_t> bytes = read_file_bytes(opt->model);
    if (!opt->dump.empty()) {
      const onnx::ModelProto proto = onnx::parse_onnx_model(bytes.data(), bytes.size());
      std::ofstream f(opt->dump);
      if (!f) throw Error("cannot open '" + opt->dump + "' for writing");
      f << onnx::to_json(proto).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return;
    }
    OnnxImportOptions o = parse_onnx_import_options(opt->range, opt->mean, opt->std);
    if (!opt->classes.empty()) o.classes = read_classes(opt->classes);
    o.name = opt->name.empty() ? std::filesystem::path(opt->model).stem().string() : opt->name;
    const std::filesystem::path dir = std::filesystem::absolute(opt->model).parent_path();
    o.read_external = [dir](const std::string& location, uint64_t offset, int64_t length) {
      return read_side_file(dir, location, offset, length);
    };
    Model model = import_onnx(bytes.data(), bytes.size(), o);
    save_model(model, opt->out);
    std::printf("imported %s: %zu nodes, %lld parameters, %lld multiply-adds per image; input %s; wrote %s\n",
                model.name().c_str(), model.num_layers(), static_cast<long long>(model.parameter_count()),
                static_cast<long long>(model.multiply_adds()), shape_to_string(model.input_shape()).c_str(),
                opt->out.c_str());
  });
}

}  // namespace igscope::tools
