#include "igscope/attribution/baselines.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_set>

#include "igscope/attribution/blur.h"
#include "igscope/error.h"

namespace igscope {

namespace {

const char* kSeedSyntax = "SPEC@SEED";
const char* kSeedMeaning = "any of them with its random seed fixed (otherwise the request's seed: --seed)";

[[noreturn]] void spec_error(const std::string& spec, const std::string& why) {
  throw Error("bad baseline '" + spec + "': " + why + " (known: " + baseline_kinds() + ")");
}

double parse_number(const std::string& spec, const std::string& text, const char* what) {
  size_t used = 0;
  double v = 0.0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(v))
    spec_error(spec, std::string(what) + " must be a number, got '" + text + "'");
  return v;
}

int64_t parse_count(const std::string& spec, const std::string& text, const char* what) {
  const double v = parse_number(spec, text, what);
  if (v < 1 || v != std::floor(v) || v > 1e6) spec_error(spec, std::string(what) + " must be a whole number >= 1");
  return static_cast<int64_t>(v);
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

float clip(double v, const ValueRange& r) { return static_cast<float>(std::min(r.hi, std::max(r.lo, v))); }

}  // namespace

const std::vector<BaselineSyntax>& baseline_grammar() {
  static const std::vector<BaselineSyntax> grammar = {
      {"black", "every value at the low end of the input range (0 for images)", "black", BaselineKind::Black},
      {"white", "every value at the high end of the input range (1 for images)", "white", BaselineKind::White},
      {"constant:V", "every value at V (inside the range)", "constant:0.5", BaselineKind::Constant},
      {"uniform", "uniform noise over the range", "uniform", BaselineKind::Uniform},
      {"gaussian:SIGMA", "the input plus Gaussian noise of std SIGMA x the range's width, clipped to the range",
       "gaussian:0.1", BaselineKind::Gaussian},
      {"blur:SIGMA", "the input blurred by a Gaussian of std SIGMA pixels (reflected borders)", "blur:2",
       BaselineKind::Blur},
      {"maxdist", "each value at the end of the range farthest from the input's value", "maxdist",
       BaselineKind::MaxDistance},
      {"image:PATH", "a custom image of the input's shape (PATH: a PNG file)", "image:baseline.png",
       BaselineKind::Image},
      {"mean", "the training samples' mean", "mean", BaselineKind::DatasetMean},
      {"median", "the training samples' per-feature median (mean of the two middle values for an even count)",
       "median", BaselineKind::DatasetMedian},
      {"train:N", "N training samples drawn without replacement, IG averaged over them (expected gradients)",
       "train:16", BaselineKind::Training},
      {"avg:N:uniform", "N uniform-noise baselines, IG averaged over them", "avg:8:uniform", BaselineKind::Uniform},
      {"avg:N:gaussian:SIGMA", "N Gaussian-noise baselines, IG averaged over them", "avg:8:gaussian:0.1",
       BaselineKind::Gaussian},
  };
  return grammar;
}

std::string baseline_kinds() {
  std::string s;
  for (const BaselineSyntax& b : baseline_grammar()) s += (s.empty() ? "" : ", ") + std::string(b.syntax);
  return s + "; any may end in @SEED";
}

std::string baseline_help() {
  size_t width = std::string(kSeedSyntax).size();
  for (const BaselineSyntax& b : baseline_grammar()) width = std::max(width, std::string(b.syntax).size());
  auto line = [&](const std::string& syntax, const char* meaning) {
    return "  " + syntax + std::string(width + 2 - syntax.size(), ' ') + meaning;
  };
  std::string s;
  for (const BaselineSyntax& b : baseline_grammar()) s += line(b.syntax, b.meaning) + "\n";
  return s + line(kSeedSyntax, kSeedMeaning);
}

void check_range(const ValueRange& range) {
  if (!std::isfinite(range.lo) || !std::isfinite(range.hi) || !(range.lo < range.hi))
    throw Error("the valid input range must be finite with lo < hi, got [" + format_number(range.lo) + ", " +
                format_number(range.hi) + "]");
}

bool BaselineSpec::is_random() const {
  return kind == BaselineKind::Uniform || kind == BaselineKind::Gaussian || kind == BaselineKind::Training;
}

std::string BaselineSpec::to_string() const {
  std::string s;
  switch (kind) {
    case BaselineKind::Black: s = "black"; break;
    case BaselineKind::White: s = "white"; break;
    case BaselineKind::Constant: s = "constant:" + format_number(parameter); break;
    case BaselineKind::Uniform: s = "uniform"; break;
    case BaselineKind::Gaussian: s = "gaussian:" + format_number(parameter); break;
    case BaselineKind::Blur: s = "blur:" + format_number(parameter); break;
    case BaselineKind::MaxDistance: s = "maxdist"; break;
    case BaselineKind::Image: s = "image:" + image_path; break;
    case BaselineKind::DatasetMean: s = "mean"; break;
    case BaselineKind::DatasetMedian: s = "median"; break;
    case BaselineKind::Training: s = "train:" + std::to_string(samples); break;
  }
  if (samples > 1 && kind != BaselineKind::Training) s = "avg:" + std::to_string(samples) + ":" + s;
  if (seed) s += "@" + std::to_string(*seed);
  return s;
}

BaselineSpec parse_baseline_spec(const std::string& text) {
  BaselineSpec spec;
  std::string rest = text;
  // image:PATH may itself hold '@' or ':'; everything after "image:" is the path.
  if (rest.rfind("image:", 0) == 0) {
    spec.kind = BaselineKind::Image;
    spec.image_path = rest.substr(6);
    if (spec.image_path.empty()) spec_error(text, "image: needs a file name");
    return spec;
  }
  const size_t at = rest.find('@');
  if (at != std::string::npos) {
    const std::string seed = rest.substr(at + 1);
    if (seed.empty() || seed.find_first_not_of("0123456789") != std::string::npos || seed.size() > 19)
      spec_error(text, "the seed after '@' must be a non-negative integer");
    spec.seed = std::stoull(seed);
    rest = rest.substr(0, at);
  }
  if (rest.rfind("avg:", 0) == 0) {
    const size_t colon = rest.find(':', 4);
    if (colon == std::string::npos) spec_error(text, "avg needs a count and a kind, as in avg:16:uniform");
    spec.samples = parse_count(text, rest.substr(4, colon - 4), "the count of averaged baselines");
    rest = rest.substr(colon + 1);
    if (rest.rfind("avg:", 0) == 0 || rest.rfind("train:", 0) == 0)
      spec_error(text, "avg takes a random kind: uniform or gaussian:SIGMA");
  }
  const size_t colon = rest.find(':');
  const std::string name = rest.substr(0, colon);
  const bool has_arg = colon != std::string::npos;
  const std::string arg = has_arg ? rest.substr(colon + 1) : "";
  auto no_arg = [&] {
    if (has_arg) spec_error(text, "'" + name + "' takes no parameter");
  };
  auto need_arg = [&](const char* what) {
    if (!has_arg) spec_error(text, "'" + name + "' needs " + what + ", as in " + name + ":" +
                                       (name == "constant" ? "0.5" : "2"));
  };
  if (name == "black") {
    no_arg();
    spec.kind = BaselineKind::Black;
  } else if (name == "white") {
    no_arg();
    spec.kind = BaselineKind::White;
  } else if (name == "constant") {
    need_arg("a value");
    spec.kind = BaselineKind::Constant;
    spec.parameter = parse_number(text, arg, "the constant");
  } else if (name == "uniform") {
    no_arg();
    spec.kind = BaselineKind::Uniform;
  } else if (name == "gaussian") {
    need_arg("a sigma");
    spec.kind = BaselineKind::Gaussian;
    spec.parameter = parse_number(text, arg, "sigma");
    if (spec.parameter < 0) spec_error(text, "sigma must be >= 0");
  } else if (name == "blur") {
    need_arg("a sigma");
    spec.kind = BaselineKind::Blur;
    spec.parameter = parse_number(text, arg, "sigma");
    if (spec.parameter < 0) spec_error(text, "sigma must be >= 0");
  } else if (name == "maxdist") {
    no_arg();
    spec.kind = BaselineKind::MaxDistance;
  } else if (name == "mean") {
    no_arg();
    spec.kind = BaselineKind::DatasetMean;
  } else if (name == "median") {
    no_arg();
    spec.kind = BaselineKind::DatasetMedian;
  } else if (name == "train") {
    need_arg("a count");
    spec.kind = BaselineKind::Training;
    if (spec.samples > 1) spec_error(text, "train:N is already an average");
    spec.samples = parse_count(text, arg, "the count of training images");
  } else {
    spec_error(text, "unknown kind '" + name + "'");
  }
  if (spec.samples > 1 && spec.kind != BaselineKind::Training && !spec.is_random())
    spec_error(text, "averaging draws needs a random kind (uniform or gaussian:SIGMA); '" + name +
                         "' gives the same baseline every time");
  return spec;
}

Tensor constant_baseline(const Tensor& input, double value) { return Tensor(input.shape(), static_cast<float>(value)); }

Tensor uniform_noise_baseline(const Tensor& input, const ValueRange& range, Rng& rng) {
  check_range(range);
  Tensor b(input.shape());
  for (int64_t i = 0; i < b.size(); ++i) b[i] = clip(rng.uniform(range.lo, range.hi), range);
  return b;
}

Tensor gaussian_noise_baseline(const Tensor& input, double sigma, const ValueRange& range, Rng& rng) {
  check_range(range);
  if (!(sigma >= 0.0) || !std::isfinite(sigma))
    throw Error("the Gaussian noise sigma must be a finite number >= 0, got " + format_number(sigma));
  Tensor b(input.shape());
  const double s = sigma * (range.hi - range.lo);
  for (int64_t i = 0; i < b.size(); ++i) b[i] = clip(input[i] + s * rng.normal(), range);
  return b;
}

Tensor max_distance_baseline(const Tensor& input, const ValueRange& range) {
  check_range(range);
  Tensor b(input.shape());
  for (int64_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<float>(range.hi - input[i] >= input[i] - range.lo ? range.hi : range.lo);
  return b;
}

Tensor dataset_mean_image(const Tensor& images) {
  if (images.rank() < 2 || images.dim(0) < 1)
    throw Error("the data-set mean needs a non-empty batch of images, got shape " + shape_to_string(images.shape()));
  Shape shape = images.shape();
  const int64_t n = shape[0], per = images.size() / n;
  shape[0] = 1;
  std::vector<double> sum(static_cast<size_t>(per), 0.0);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < per; ++i) sum[static_cast<size_t>(i)] += images[k * per + i];
  Tensor mean(shape);
  for (int64_t i = 0; i < per; ++i) mean[i] = static_cast<float>(sum[static_cast<size_t>(i)] / static_cast<double>(n));
  return mean;
}

Tensor dataset_median_image(const Tensor& images) {
  if (images.rank() < 2 || images.dim(0) < 1)
    throw Error("the data-set median needs a non-empty batch of samples, got shape " + shape_to_string(images.shape()));
  Shape shape = images.shape();
  const int64_t n = shape[0], per = images.size() / n;
  shape[0] = 1;
  Tensor median(shape);
  std::vector<float> column(static_cast<size_t>(n));
  for (int64_t i = 0; i < per; ++i) {
    for (int64_t k = 0; k < n; ++k) column[static_cast<size_t>(k)] = images[k * per + i];
    std::sort(column.begin(), column.end());
    const size_t mid = static_cast<size_t>(n / 2);
    median[i] = n % 2 ? column[mid]
                      : static_cast<float>((static_cast<double>(column[mid - 1]) + column[mid]) / 2.0);
  }
  return median;
}

std::vector<Tensor> make_baselines(const BaselineSpec& spec, const Tensor& input, const ValueRange& range,
                                   const BaselineSources& sources, uint64_t default_seed) {
  check_range(range);
  const std::string name = spec.to_string();
  if (spec.samples < 1) throw Error("baseline '" + name + "': the number of baselines must be at least 1");
  if (spec.samples > 1 && !spec.is_random())
    throw Error("baseline '" + name + "': averaging draws needs a random kind");
  Rng rng(spec.seed.value_or(default_seed));
  std::vector<Tensor> out;
  auto sample_shape_matches = [&](const Tensor& t, int64_t skip) {
    Shape a(t.shape().begin() + static_cast<std::ptrdiff_t>(skip), t.shape().end());
    Shape b(input.shape().begin() + 1, input.shape().end());
    return a == b;
  };
  switch (spec.kind) {
    case BaselineKind::Black: out.push_back(constant_baseline(input, range.lo)); break;
    case BaselineKind::White: out.push_back(constant_baseline(input, range.hi)); break;
    case BaselineKind::Constant:
      if (!(spec.parameter >= range.lo && spec.parameter <= range.hi))
        throw Error("baseline '" + name + "': the constant " + format_number(spec.parameter) +
                    " is outside the valid range [" + format_number(range.lo) + ", " + format_number(range.hi) + "]");
      out.push_back(constant_baseline(input, spec.parameter));
      break;
    case BaselineKind::Uniform:
      for (int64_t k = 0; k < spec.samples; ++k) out.push_back(uniform_noise_baseline(input, range, rng));
      break;
    case BaselineKind::Gaussian:
      for (int64_t k = 0; k < spec.samples; ++k) out.push_back(gaussian_noise_baseline(input, spec.parameter, range, rng));
      break;
    case BaselineKind::Blur:
      if (!(spec.parameter >= 0.0)) throw Error("baseline '" + name + "': the blur sigma must be >= 0");
      out.push_back(gaussian_blur(input, spec.parameter));
      break;
    case BaselineKind::MaxDistance: out.push_back(max_distance_baseline(input, range)); break;
    case BaselineKind::Image: {
      if (!sources.image) throw Error("baseline '" + name + "': no image was supplied");
      const Tensor& img = *sources.image;
      const bool fits = img.size() == input.size() &&
                        (img.shape() == input.shape() || (img.rank() + 1 == input.rank() && sample_shape_matches(img, 0)));
      if (!fits)
        throw Error("baseline '" + name + "': the image has shape " + shape_to_string(img.shape()) +
                    " but the input has shape " + shape_to_string(input.shape()));
      Tensor b = img;
      b.reshape(input.shape());
      out.push_back(std::move(b));
      break;
    }
    case BaselineKind::DatasetMean:
    case BaselineKind::DatasetMedian:
    case BaselineKind::Training: {
      if (!sources.dataset) throw Error("baseline '" + name + "': no data set was supplied");
      const Tensor& data = *sources.dataset;
      if (data.rank() != input.rank() || !sample_shape_matches(data, 1) || data.dim(0) < 1)
        throw Error("baseline '" + name + "': the data set's images have shape " + shape_to_string(data.shape()) +
                    " but the input has shape " + shape_to_string(input.shape()));
      if (spec.kind == BaselineKind::DatasetMean) {
        out.push_back(dataset_mean_image(data));
        break;
      }
      if (spec.kind == BaselineKind::DatasetMedian) {
        out.push_back(dataset_median_image(data));
        break;
      }
      const int64_t n = data.dim(0), per = input.size();
      if (spec.samples > n)
        throw Error("baseline '" + name + "': asks for " + std::to_string(spec.samples) +
                    " training images but the data set has " + std::to_string(n));
      std::unordered_set<int64_t> taken;
      while (static_cast<int64_t>(out.size()) < spec.samples) {
        const int64_t k = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
        if (!taken.insert(k).second) continue;
        Tensor b(input.shape());
        std::copy(data.data() + k * per, data.data() + (k + 1) * per, b.data());
        out.push_back(std::move(b));
      }
      break;
    }
  }
  for (const Tensor& b : out)
    for (int64_t i = 0; i < b.size(); ++i)
      if (!std::isfinite(b[i]))
        throw Error("baseline '" + name + "' holds a non-finite value at flat index " + std::to_string(i));
  return out;
}

}  // namespace igscope
