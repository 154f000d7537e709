// The Prometheus text writer: names, types, escaping, ordering, values.
#include "vfabric/metrics/exposition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace vfabric::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ExpositionTest, WritesHelpTypeAndSamplesOfACounter) {
  Exposition out;
  ASSERT_TRUE(
      out.Declare("vfabric_port_receive_bytes_total", Type::kCounter, "Bytes received on the port.")
          .ok());
  ASSERT_TRUE(out.Add("vfabric_port_receive_bytes_total", {{"network", "lab"}, {"port", "vm1"}},
                      uint64_t{1234})
                  .ok());
  EXPECT_EQ(out.Text(),
            "# HELP vfabric_port_receive_bytes_total Bytes received on the port.\n"
            "# TYPE vfabric_port_receive_bytes_total counter\n"
            "vfabric_port_receive_bytes_total{network=\"lab\",port=\"vm1\"} 1234\n");
  EXPECT_EQ(out.families(), 1u);
  EXPECT_EQ(out.samples(), 1u);
}

TEST(ExpositionTest, FamiliesComeInNameOrderSamplesInTheOrderAdded) {
  Exposition out;
  ASSERT_TRUE(out.Gauge("vfabric_z", "z", {{"port", "b"}}, 1.0).ok());
  ASSERT_TRUE(out.Counter("vfabric_a_total", "a", {}, uint64_t{1}).ok());
  ASSERT_TRUE(out.Gauge("vfabric_z", "z", {{"port", "a"}}, 2.0).ok());
  EXPECT_EQ(out.Text(),
            "# HELP vfabric_a_total a\n"
            "# TYPE vfabric_a_total counter\n"
            "vfabric_a_total 1\n"
            "# HELP vfabric_z z\n"
            "# TYPE vfabric_z gauge\n"
            "vfabric_z{port=\"b\"} 1\n"
            "vfabric_z{port=\"a\"} 2\n");
}

TEST(ExpositionTest, AFamilyWithoutSamplesIsLeftOut) {
  Exposition out;
  ASSERT_TRUE(out.Declare("vfabric_nothing", Type::kGauge, "none yet").ok());
  EXPECT_EQ(out.Text(), "");
}

TEST(ExpositionTest, EscapesLabelValuesAndHelp) {
  Exposition out;
  ASSERT_TRUE(
      out.Gauge("vfabric_x", "a \\ back\nslash \"quoted\"", {{"port", "a\"b\\c\nd"}}, 1.0).ok());
  EXPECT_EQ(out.Text(),
            "# HELP vfabric_x a \\\\ back\\nslash \"quoted\"\n"
            "# TYPE vfabric_x gauge\n"
            "vfabric_x{port=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(ExpositionTest, ReplacesInvalidUtf8InLabelValues) {
  EXPECT_EQ(EscapeLabelValue("ok-\xC3\xA9"), "ok-\xC3\xA9");  // é stays
  EXPECT_EQ(EscapeLabelValue("a\xFF"
                             "b"),
            "a\xEF\xBF\xBD"
            "b");                                                       // a stray byte
  EXPECT_EQ(EscapeLabelValue("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(EscapeLabelValue("\xED\xA0\x80"),                           // a surrogate
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(EscapeLabelValue("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
  EXPECT_EQ(EscapeLabelValue("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // 4 bytes
}

TEST(ExpositionTest, RefusesBadNamesAndTypes) {
  Exposition out;
  EXPECT_FALSE(out.Declare("vfabric_packets", Type::kCounter, "no _total").ok());
  EXPECT_FALSE(out.Declare("vfabric_up_total", Type::kGauge, "a gauge with _total").ok());
  EXPECT_FALSE(out.Declare("1vfabric", Type::kGauge, "digit first").ok());
  EXPECT_FALSE(out.Declare("vfabric-x", Type::kGauge, "dash").ok());
  EXPECT_FALSE(out.Declare("", Type::kGauge, "empty").ok());
  EXPECT_FALSE(out.Declare("vfabric_h_count", Type::kHistogram, "suffix").ok());
  EXPECT_TRUE(out.Declare("vfabric:rule_x", Type::kGauge, "colons are allowed").ok());

  ASSERT_TRUE(out.Declare("vfabric_g", Type::kGauge, "g").ok());
  EXPECT_TRUE(out.Declare("vfabric_g", Type::kGauge, "g").ok());  // again, the same
  Status twice = out.Declare("vfabric_g", Type::kCounter, "g");
  EXPECT_FALSE(twice.ok());
  EXPECT_THAT(twice.message(), HasSubstr("vfabric_g"));
  EXPECT_FALSE(out.Add("vfabric_undeclared", {}, 1.0).ok());

  EXPECT_FALSE(out.Add("vfabric_g", {{"__reserved", "x"}}, 1.0).ok());
  EXPECT_FALSE(out.Add("vfabric_g", {{"port-name", "x"}}, 1.0).ok());
  EXPECT_FALSE(out.Add("vfabric_g", {{"port", "x"}, {"port", "y"}}, 1.0).ok());
  EXPECT_EQ(out.Text(), "");  // nothing refused was written
}

TEST(ExpositionTest, OneSeriesOncePerFamily) {
  Exposition out;
  ASSERT_TRUE(out.Gauge("vfabric_g", "g", {{"port", "a"}}, 1.0).ok());
  Status again = out.Gauge("vfabric_g", "g", {{"port", "a"}}, 2.0);
  EXPECT_FALSE(again.ok());
  EXPECT_THAT(again.message(), HasSubstr("added twice"));
  EXPECT_THAT(out.Text(), Not(HasSubstr(" 2\n")));
}

TEST(ExpositionTest, CountersAreNeverNegative) {
  Exposition out;
  ASSERT_TRUE(out.Declare("vfabric_c_total", Type::kCounter, "c").ok());
  EXPECT_FALSE(out.Add("vfabric_c_total", {}, -1.0).ok());
  EXPECT_FALSE(out.Add("vfabric_c_total", {}, std::nan("")).ok());
  EXPECT_TRUE(out.Add("vfabric_c_total", {}, 2.5).ok());
}

TEST(ExpositionTest, FormatsValues) {
  EXPECT_EQ(FormatValue(uint64_t{0}), "0");
  EXPECT_EQ(FormatValue(std::numeric_limits<uint64_t>::max()), "18446744073709551615");
  EXPECT_EQ(FormatValue(1.0), "1");
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(std::stod(FormatValue(0.1 + 0.2)), 0.1 + 0.2);  // reads back the same
}

TEST(ExpositionTest, WritesAHistogramCumulativeWithInfSumAndCount) {
  Histogram h({0.25, 0.5, 1});
  h.Observe(0.125);
  h.Observe(0.25);  // on a bound: in that bucket ("le")
  h.Observe(0.75);
  h.Observe(7);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{2, 0, 1, 1}));
  Exposition out;
  ASSERT_TRUE(out.Declare("vfabric_d_seconds", Type::kHistogram, "d").ok());
  ASSERT_TRUE(out.AddHistogram("vfabric_d_seconds", {{"trigger", "repair"}}, h).ok());
  EXPECT_EQ(out.Text(),
            "# HELP vfabric_d_seconds d\n"
            "# TYPE vfabric_d_seconds histogram\n"
            "vfabric_d_seconds_bucket{trigger=\"repair\",le=\"0.25\"} 2\n"
            "vfabric_d_seconds_bucket{trigger=\"repair\",le=\"0.5\"} 2\n"
            "vfabric_d_seconds_bucket{trigger=\"repair\",le=\"1\"} 3\n"
            "vfabric_d_seconds_bucket{trigger=\"repair\",le=\"+Inf\"} 4\n"
            "vfabric_d_seconds_sum{trigger=\"repair\"} 8.125\n"
            "vfabric_d_seconds_count{trigger=\"repair\"} 4\n");
  EXPECT_EQ(out.samples(), 6u);
  // `le` is the histogram's own label; the same series twice is refused;
  // a histogram family takes no plain samples and the reverse.
  EXPECT_FALSE(out.AddHistogram("vfabric_d_seconds", {{"le", "1"}}, h).ok());
  EXPECT_FALSE(out.AddHistogram("vfabric_d_seconds", {{"trigger", "repair"}}, h).ok());
  EXPECT_FALSE(out.Add("vfabric_d_seconds", {}, 1.0).ok());
  ASSERT_TRUE(out.Declare("vfabric_g", Type::kGauge, "g").ok());
  EXPECT_FALSE(out.AddHistogram("vfabric_g", {}, h).ok());
}

}  // namespace
}  // namespace vfabric::metrics
