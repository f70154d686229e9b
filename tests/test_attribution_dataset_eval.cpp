// Attribution evaluation over a data set: four shards merged give exactly the
// numbers of one run; the records survive a JSON round trip; bad shard specs
// and overlapping parts are refused.
#include <catch2/catch.hpp>

#include "igscope/attribution/dataset_eval.h"
#include "igscope/backend/backend.h"
#include "igscope/error.h"

using namespace igscope;

namespace {

// Everything but the wall-clock fields.
nlohmann::json without_timing(nlohmann::json j) {
  j.erase("seconds");
  for (const char* k : {"attribution_seconds", "attribution_images_per_second", "seconds", "images_per_second"})
    j["summary"].erase(k);
  for (auto& row : j["summary"]["pairs"]) row.erase("attribution_images_per_second");
  for (auto& im : j["images"])
    for (auto& p : im["pairs"]) p.erase("seconds");
  return j;
}

AttributionEvalConfig small_config() {
  AttributionEvalConfig c;
  c.methods = {"ig", "gradient"};
  c.baselines = {"black", "uniform", "gaussian:0.1"};  // two random kinds: seeds must follow the image
  c.request.integration.steps = 8;
  c.curve_steps = 5;
  c.infidelity.samples = 4;
  c.sensitivity.samples = 2;
  return c;
}

}  // namespace

TEST_CASE("attribution eval: four shards merge into exactly one run's results", "[dataset_eval]") {
  Model model = load_model(std::string(IGSCOPE_SOURCE_DIR) + "/model_weights/fashion_cnn_v1.safetensors");
  auto backend = make_backend(default_backend(), 1);
  const Dataset data = load_fashion_mnist("test").slice(0, 7);
  const AttributionEvalConfig config = small_config();

  const AttributionEvalResults whole = evaluate_attributions(model, *backend, data, config);
  REQUIRE(whole.images.size() == 7);
  std::vector<AttributionEvalResults> parts;
  for (int64_t s = 0; s < 4; ++s) {
    parts.push_back(evaluate_attributions(model, *backend, data, config, Shard{s, 4}));
    for (const auto& im : parts.back().images) CHECK(im.index % 4 == s);
  }
  // Shards travel as JSON files.
  std::vector<AttributionEvalResults> read_back;
  for (const auto& p : parts) read_back.push_back(AttributionEvalResults::from_json(nlohmann::json::parse(p.to_json().dump())));
  const AttributionEvalResults merged = merge_attribution_results(read_back);
  CHECK(without_timing(merged.to_json()) == without_timing(whole.to_json()));

  const nlohmann::json s = whole.summary();
  CHECK(s["pairs"].size() == 6);
  CHECK(s["images"] == 7);
  for (const auto& row : s["pairs"]) {
    INFO(row.dump());
    CHECK(row["deletion_auc"].get<double>() >= 0.0);
    CHECK(row["insertion_auc"].get<double>() <= 1.0);
    if (row["method"] == "ig") CHECK(row["median_relative_gap"].get<double>() < 0.5);
    else CHECK(row["median_relative_gap"].is_null());  // no path, no gap
  }
  CHECK_THROWS_WITH(merge_attribution_results({parts[0], parts[0]}), Catch::Contains("more than one part"));
  AttributionEvalResults other = parts[1];
  other.config["steps"] = 16;
  CHECK_THROWS_WITH(merge_attribution_results({parts[0], other}), Catch::Contains("different configurations"));
}

TEST_CASE("shard specs are checked", "[dataset_eval]") {
  CHECK(parse_shard("2/4").index == 2);
  CHECK(parse_shard("2/4").count == 4);
  for (const char* bad : {"4/4", "1", "a/b", "-1/3", "1/0", ""}) CHECK_THROWS_AS(parse_shard(bad), Error);
  CHECK_THROWS_WITH(AttributionEvalResults::from_json(nlohmann::json::object()), Catch::Contains("not an igscope"));
}
