#include "igscope/data/diabetes.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "igscope/data/gzip_file.h"
#include "igscope/error.h"

namespace igscope {

namespace {

constexpr const char* kDefaultDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";
constexpr int64_t kFeatures = 10;

// The non-empty lines' numbers, each line checked to hold `per_line` finite numbers.
std::vector<std::vector<double>> read_rows(const std::string& path, size_t per_line) {
  const std::vector<uint8_t> bytes = read_maybe_gzip(path);
  std::istringstream text(std::string(bytes.begin(), bytes.end()));
  std::vector<std::vector<double>> rows;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(text, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::istringstream fields(line);
    std::vector<double> row;
    std::string field;
    while (fields >> field) {
      char* end = nullptr;
      const double v = std::strtod(field.c_str(), &end);
      if (end == field.c_str() || *end != '\0' || !std::isfinite(v))
        throw Error("'" + path + "' line " + std::to_string(line_no) + ": '" + field + "' is not a finite number");
      row.push_back(v);
    }
    if (row.size() != per_line)
      throw Error("'" + path + "' line " + std::to_string(line_no) + ": " + std::to_string(row.size()) +
                  " numbers, expected " + std::to_string(per_line));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

const std::vector<std::string>& diabetes_feature_names() {
  static const std::vector<std::string> names{"age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"};
  return names;
}

std::string diabetes_dir() {
  const char* env = std::getenv("IGSCOPE_DIABETES_DIR");
  const std::string dir = env && *env ? env : kDefaultDir;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dir + "/diabetes_data_raw.csv.gz", ec) ||
      !std::filesystem::is_regular_file(dir + "/diabetes_target.csv.gz", ec))
    throw Error("the diabetes data is not in '" + dir +
                "' (diabetes_data_raw.csv.gz, diabetes_target.csv.gz): install Debian's python3-sklearn "
                "(scripts/bootstrap does), or set IGSCOPE_DIABETES_DIR to a folder holding the two files");
  return dir;
}

TabularData load_diabetes(const std::string& dir) {
  const std::string d = dir.empty() ? diabetes_dir() : dir;
  return read_diabetes(d + "/diabetes_data_raw.csv.gz", d + "/diabetes_target.csv.gz");
}

TabularData read_diabetes(const std::string& data_path, const std::string& target_path) {
  const auto rows = read_rows(data_path, kFeatures);
  const auto targets = read_rows(target_path, 1);
  if (rows.empty()) throw Error("'" + data_path + "' holds no samples");
  if (rows.size() != targets.size())
    throw Error("'" + data_path + "' has " + std::to_string(rows.size()) + " samples but '" + target_path + "' has " +
                std::to_string(targets.size()) + " targets");
  TabularData d;
  d.feature_names = diabetes_feature_names();
  d.features = Tensor({static_cast<int64_t>(rows.size()), kFeatures});
  for (size_t n = 0; n < rows.size(); ++n) {
    for (int64_t f = 0; f < kFeatures; ++f)
      d.features[static_cast<int64_t>(n) * kFeatures + f] = static_cast<float>(rows[n][static_cast<size_t>(f)]);
    d.targets.push_back(targets[n][0]);
  }
  return d;
}

}  // namespace igscope
