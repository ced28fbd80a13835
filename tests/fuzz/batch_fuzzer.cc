// Fuzz target "batch": the router-node hop batches (common/hop_batch.h),
// which a node decodes from whatever reaches its ROUTER socket.
//
//  - DecodeBatch never crashes and never reads past the blob; what it
//    accepts is within the bounds (1..kMaxRecords records of
//    2..kMaxRecordFrames frames, at most kMaxBytes), and written again with
//    BatchWriter it gives back the same bytes;
//  - what it refuses leaves no records and says why;
//  - the heartbeat checks (PingAsksBatch, PongBatchLimit) never crash on
//    any body.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/hop_batch.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace hb = todo::hop_batch;
  std::string_view blob(reinterpret_cast<const char*>(data), size);

  (void)hb::PingAsksBatch(blob);
  (void)hb::PongBatchLimit(blob);

  std::vector<hb::Record> records;
  todo::Status s = hb::DecodeBatch(blob, &records);
  if (!s.ok()) {
    FUZZ_CHECK(records.empty());
    FUZZ_CHECK(!s.message().empty());
    return 0;
  }
  FUZZ_CHECK(!records.empty() && records.size() <= hb::kMaxRecords);
  FUZZ_CHECK(size <= hb::kMaxBytes);
  hb::BatchWriter w;
  const char* begin = blob.data();
  const char* end = begin + blob.size();
  for (const hb::Record& r : records) {
    FUZZ_CHECK(r.n >= 2 && r.n <= hb::kMaxRecordFrames);
    size_t bytes = 0;
    for (size_t i = 0; i < r.n; ++i) {
      // Views into the blob, never past it.
      FUZZ_CHECK(r.frames[i].empty() ||
                 (r.frames[i].data() >= begin && r.frames[i].data() + r.frames[i].size() <= end));
      bytes += r.frames[i].size();
    }
    FUZZ_CHECK(w.Fits(r.n, bytes));
    w.Add(r.frames.data(), r.n);
  }
  FUZZ_CHECK(w.blob() == blob);
  return 0;
}
