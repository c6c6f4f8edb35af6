// libFuzzer target: the IDX reader on arbitrary bytes, plain or gzip-compressed, read as
// images [N, rows, columns] and as labels [N], must either refuse them with a file_error or
// give an array that holds exactly the values its dimensions declare, allocating no more than
// the input holds (inflated) and the header declares.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/shape.h"
#include "xgrad/models/image_data.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const std::size_t rank : {std::size_t(3), std::size_t(1)}) {
    try {
      const models::IdxArray array = models::parse_idx(bytes, "fuzz.idx", rank);
      if (array.dimensions.size() != rank || array.values.size() != element_count(array.dimensions)) std::abort();
      if (rank == 3) {
        const models::LabelledImages images{.height = array.dimensions[1], .width = array.dimensions[2],
                                            .pixels = array.values,
                                            .labels = std::vector<std::int64_t>(array.dimensions[0])};
        (void)models::image_batch<float>(images, {images.size() - 1, 0});
      }
    } catch (const file_error&) {
    }
  }
  return 0;
}
