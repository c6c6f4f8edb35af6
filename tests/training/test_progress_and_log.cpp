// The training API's progress display (a bar redrawn on a terminal, rate-limited plain lines
// in a log) and its CSV log (flushed rows, a resumed run appending under the same header).
#define BOOST_TEST_MODULE progress_and_log
#include "xgrad_test.h"

#include <fstream>
#include <sstream>

#include <xgrad/train.h>

using xgrad::testing::TempDir;
using namespace xgrad;
using namespace xgrad::training;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(progress)

struct FakeClock {
  double now = 100.0;
  std::function<double()> function() {
    return [this] { return now; };
  }
};

BOOST_AUTO_TEST_CASE(without_a_terminal_plain_lines_are_rate_limited) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar({.label = "epoch 2", .total_steps = 10, .out = &out, .interactive = false, .plain_interval_seconds = 5.0,
                   .clock = clock.function()});
  clock.now += 2.0;
  bar.update(1, 5.5, 1000);
  BOOST_TEST(out.str().empty());  // too soon for a line
  clock.now += 2.0;
  bar.update(2, 5.25, 1000);
  BOOST_TEST(out.str().empty());
  clock.now += 1.0;
  bar.update(3, 5.0, 500);  // 5 s after the start: 2500 tokens, 3 of 10 steps
  BOOST_TEST(out.str() == "epoch 2 step 3/10 loss 5.0000 500 tok/s ETA 0:12\n");
  clock.now += 1.0;
  bar.update(4, 4.75, 500);
  BOOST_TEST(out.str() == "epoch 2 step 3/10 loss 5.0000 500 tok/s ETA 0:12\n");  // 1 s since the last line
  clock.now += 4.0;
  bar.update(10, 4.5, 7000);
  bar.finish();
  bar.finish();
  BOOST_TEST(out.str() == "epoch 2 step 3/10 loss 5.0000 500 tok/s ETA 0:12\n"
                          "epoch 2 step 10/10 loss 4.5000 1000 tok/s ETA 0:00\n"
                          "epoch 2 step 10/10 loss 4.5000 1000 tok/s elapsed 0:10\n");
}

BOOST_AUTO_TEST_CASE(on_a_terminal_one_line_is_redrawn) {
  FakeClock clock;
  std::ostringstream out;
  {
    ProgressBar bar({.label = "epoch 1", .total_steps = 4, .first_step = 2, .out = &out, .interactive = true,
                     .clock = clock.function()});
    clock.now += 30.0;
    bar.update(3, 2.0, 3000);
    BOOST_TEST(out.str() == "\repoch 1 [##################......] 3/4 loss 2.0000 100 tok/s ETA 0:30");
    clock.now += 0.05;
    bar.update(3, 1.5, 0);  // redrawn at most every 0.1 s
    BOOST_TEST(out.str() == "\repoch 1 [##################......] 3/4 loss 2.0000 100 tok/s ETA 0:30");
    bar.finish();
    BOOST_TEST(out.str().back() == '\n');
    BOOST_TEST(contains(out.str(), "\repoch 1 [##################......] 3/4 loss 1.5000 100 tok/s elapsed 0:30"), out.str());
  }
  std::ostringstream interrupted;
  {
    ProgressBar bar({.total_steps = 4, .out = &interrupted, .interactive = true, .clock = clock.function()});
    bar.update(1, 3.0, 10);
  }
  BOOST_TEST(interrupted.str().back() == '\n');  // an abandoned bar still ends its line
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(csv_log)

const std::vector<std::string> columns = {"epoch", "step", "train_loss", "valid_loss", "bleu", "note"};

BOOST_AUTO_TEST_CASE(creates_the_header_and_flushes_each_row) {
  TempDir dir;
  const std::string path = (dir.path / "log.csv").string();
  CsvLog log(path, columns);
  BOOST_TEST(read_file(path) == "epoch,step,train_loss,valid_loss,bleu,note\n");
  log.append({1, std::size_t{454}, 4.123456789, 3.5, std::nullopt, "first, \"warm\" epoch"});
  BOOST_TEST(read_file(path) == "epoch,step,train_loss,valid_loss,bleu,note\n"
                                    "1,454,4.12346,3.5,,\"first, \"\"warm\"\" epoch\"\n");
  BOOST_CHECK_THROW(log.append({1, 2}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_resumed_run_appends_below_the_same_header) {
  TempDir dir;
  const std::string path = (dir.path / "log.csv").string();
  CsvLog(path, columns).append({1, 10, 2.5, 2.25, 12.5, "a"});
  CsvLog(path, columns).append({2, 20, 2.0, 2.125, 15.0, "b"});
  BOOST_TEST(read_file(path) == "epoch,step,train_loss,valid_loss,bleu,note\n1,10,2.5,2.25,12.5,a\n2,20,2,2.125,15,b\n");
}

BOOST_AUTO_TEST_CASE(a_different_header_is_an_error_naming_the_file) {
  TempDir dir;
  const std::string path = (dir.path / "log.csv").string();
  CsvLog(path, {"epoch", "loss"});
  try {
    CsvLog log(path, columns);
    BOOST_FAIL("no file_error");
  } catch (const file_error& e) {
    BOOST_TEST(contains(e.what(), path + ": the log's header is 'epoch,loss'"), e.what());
  }
  BOOST_TEST(read_file(path) == "epoch,loss\n");
}

BOOST_AUTO_TEST_CASE(a_row_cut_short_by_a_crash_does_not_swallow_the_next) {
  TempDir dir;
  const std::string path = (dir.path / "log.csv").string();
  std::ofstream(path) << "epoch,loss\n1,2.5\n2,2.";
  CsvLog(path, {"epoch", "loss"}).append({3, 1.75});
  BOOST_TEST(read_file(path) == "epoch,loss\n1,2.5\n2,2.\n3,1.75\n");
}

BOOST_AUTO_TEST_SUITE_END()
