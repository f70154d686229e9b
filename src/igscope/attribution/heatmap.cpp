#include "igscope/attribution/heatmap.h"

#include <algorithm>
#include <cmath>

#include "igscope/error.h"

namespace igscope {

HeatmapStyle parse_heatmap_style(const std::string& name) {
  if (name == "signed") return HeatmapStyle::Signed;
  if (name == "magnitude") return HeatmapStyle::Magnitude;
  if (name == "positive") return HeatmapStyle::Positive;
  throw Error("unknown heatmap style '" + name + "' (known: signed, magnitude, positive)");
}

double abs_percentile(const std::vector<float>& values, double p) {
  if (!(p > 0.0 && p <= 100.0)) throw Error("the clip percentile must be in (0, 100], got " + std::to_string(p));
  if (values.empty()) return 0.0;
  std::vector<double> a(values.size());
  for (size_t i = 0; i < values.size(); ++i) a[i] = std::abs(static_cast<double>(values[i]));
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(a.size())));
  const size_t k = std::min(a.size() - 1, rank == 0 ? 0 : rank - 1);
  std::nth_element(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(k), a.end());
  return a[k];
}

RgbImage render_heatmap(const Tensor& attributions, const Tensor* input, const HeatmapOptions& o) {
  const Tensor& t = attributions;
  abs_percentile({}, o.clip_percentile);  // validates the percentile
  int64_t h = 0, w = 0, c = 0;
  if (t.rank() == 4 && t.dim(0) == 1) {
    h = t.dim(1), w = t.dim(2), c = t.dim(3);
  } else if (t.rank() == 3) {
    h = t.dim(0), w = t.dim(1), c = t.dim(2);
  } else {
    throw Error("a heatmap needs one image of attributions [1, H, W, C], got shape " + shape_to_string(t.shape()));
  }
  if (o.scale < 1 || o.scale > 64) throw Error("the heatmap scale must be between 1 and 64, got " + std::to_string(o.scale));
  if (!(o.overlay >= 0.0 && o.overlay <= 1.0))
    throw Error("the overlay opacity must be in [0, 1], got " + std::to_string(o.overlay));
  if (o.overlay > 0.0 && (!input || input->size() != t.size()))
    throw Error("an overlay needs the input image, of the attributions' shape");
  if (!(o.input_hi > o.input_lo)) throw Error("the input range must have lo < hi");

  // Sum over channels.
  std::vector<float> v(static_cast<size_t>(h * w), 0.0f), grey(static_cast<size_t>(h * w), 0.0f);
  for (int64_t p = 0; p < h * w; ++p)
    for (int64_t ch = 0; ch < c; ++ch) {
      v[static_cast<size_t>(p)] += t[p * c + ch];
      if (input) grey[static_cast<size_t>(p)] += static_cast<float>(((*input)[p * c + ch] - o.input_lo) /
                                                                    (o.input_hi - o.input_lo) / static_cast<double>(c));
    }
  std::vector<float> basis = v;
  if (o.style == HeatmapStyle::Positive)
    for (auto& x : basis) x = std::max(x, 0.0f);
  double clip = abs_percentile(basis, o.clip_percentile);
  if (!(clip > 0.0)) clip = 1.0;  // all zero: draw nothing

  RgbImage img;
  img.width = w * o.scale;
  img.height = h * o.scale;
  img.pixels.resize(static_cast<size_t>(img.width * img.height * 3));
  auto byte = [](double x) { return static_cast<uint8_t>(std::lround(std::min(1.0, std::max(0.0, x)) * 255.0)); };
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const size_t p = static_cast<size_t>(y * w + x);
      const double s = std::max(-1.0, std::min(1.0, v[p] / clip));
      double r = 1, g = 1, b = 1, strength = std::abs(s);
      switch (o.style) {
        case HeatmapStyle::Signed:
          if (s >= 0) {
            g = b = 1.0 - s;
          } else {
            r = g = 1.0 + s;
          }
          break;
        case HeatmapStyle::Positive:
          strength = std::max(0.0, s);
          g = b = 1.0 - strength;
          break;
        case HeatmapStyle::Magnitude: {
          const double m = strength;  // black -> red -> yellow -> white
          r = std::min(1.0, 3.0 * m);
          g = std::min(1.0, std::max(0.0, 3.0 * m - 1.0));
          b = std::max(0.0, 3.0 * m - 2.0);
          break;
        }
      }
      if (o.overlay > 0.0) {
        const double a = o.overlay * strength, gr = std::min(1.0, std::max(0.0, static_cast<double>(grey[p])));
        r = a * r + (1 - a) * gr;
        g = a * g + (1 - a) * gr;
        b = a * b + (1 - a) * gr;
      }
      for (int64_t dy = 0; dy < o.scale; ++dy)
        for (int64_t dx = 0; dx < o.scale; ++dx) {
          uint8_t* px = &img.pixels[static_cast<size_t>(((y * o.scale + dy) * img.width + x * o.scale + dx) * 3)];
          px[0] = byte(r);
          px[1] = byte(g);
          px[2] = byte(b);
        }
    }
  return img;
}

}  // namespace igscope
