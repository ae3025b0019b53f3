#include "core/u8_batch_moments.h"

#include <algorithm>
#include <vector>

#include "core/kernels/integer_moments.h"
#include "core/kernels/integer_sums.h"

namespace normd {
namespace {

constexpr size_t kPartBytes = size_t{4} << 20;  // input per parallel part

void Add(const U8ChannelTotals& from, U8ChannelTotals& into) {
  into.count += from.count;
  into.sum += from.sum;
  into.sum_squares += from.sum_squares;
  into.min = std::min(into.min, from.min);
  into.max = std::max(into.max, from.max);
}

void AddRun(const IntegerSums& sums, uint64_t count, U8ChannelTotals& into) {
  Add({count, sums.sum, sums.sum_squares, sums.min, sums.max}, into);
}

// Units [begin, end) of the walk (runs, or rows with the partial row last) into
// per-channel totals.
void FitPart(const uint8_t* data, const KernelWalk& walk, const std::vector<uint32_t>& columns,
             size_t begin, size_t end, std::vector<U8ChannelTotals>& totals) {
  if (walk.kind == KernelWalk::Kind::kRuns) {
    for (size_t run = begin; run < end; ++run) {
      AddRun(U8SumsRun(data + run * walk.inner, walk.inner), walk.inner,
             totals[run % walk.channels]);
    }
    return;
  }
  const size_t full_end = std::min(end, walk.rows);
  const size_t width = full_end > begin ? walk.row_len : walk.tail;
  std::vector<uint64_t> sum(width), squares(width);
  std::vector<uint8_t> min(width, 255), max(width, 0);
  if (full_end > begin) {
    U8SumsRows(data + begin * walk.row_len, full_end - begin, walk.row_len, sum.data(),
               squares.data(), min.data(), max.data());
  }
  for (size_t j = 0; j < walk.row_len && full_end > begin; ++j) {
    Add({full_end - begin, sum[j], squares[j], min[j], max[j]}, totals[columns[j]]);
  }
  if (end > walk.rows && walk.tail > 0) {  // the partial row
    for (size_t j = 0; j < walk.tail; ++j) {
      const uint8_t v = data[walk.rows * walk.row_len + j];
      Add({1, v, static_cast<uint64_t>(v) * v, v, v}, totals[columns[j]]);
    }
  }
}

}  // namespace

ChannelMoments MomentsOfTotals(const U8ChannelTotals& t) {
  ChannelMoments m;
  if (t.count == 0) return m;
  m.count = t.count;
  const IntegerMoments exact = MomentsOfIntegerSums(t.count, t.sum, t.sum_squares);
  m.mean = exact.mean;
  m.m2 = exact.m2;
  m.min = t.min;
  m.max = t.max;
  return m;
}

void ComputeU8BatchMoments(const TensorView& batch, const KernelWalk& walk,
                           std::span<ChannelMoments> out, WorkerPool* pool) {
  const auto* data = reinterpret_cast<const uint8_t*>(batch.bytes.data());
  const bool runs = walk.kind == KernelWalk::Kind::kRuns;
  const size_t units = runs ? walk.runs : walk.rows + (walk.tail > 0 ? 1 : 0);
  const size_t unit_bytes = runs ? walk.inner : walk.row_len;
  const size_t per_part = std::max<size_t>(1, kPartBytes / unit_bytes);
  const size_t parts = (units + per_part - 1) / per_part;
  const std::vector<uint32_t> columns = runs ? std::vector<uint32_t>{} : ColumnChannels(walk);
  std::vector<std::vector<U8ChannelTotals>> results(parts);
  const auto fit_part = [&](size_t p) {
    results[p].resize(walk.channels);
    FitPart(data, walk, columns, p * per_part, std::min(units, (p + 1) * per_part), results[p]);
  };
  RunTasks(pool, parts, fit_part);
  std::vector<U8ChannelTotals> totals(walk.channels);
  for (const std::vector<U8ChannelTotals>& part : results) {
    for (size_t c = 0; c < walk.channels; ++c) Add(part[c], totals[c]);
  }
  for (size_t c = 0; c < walk.channels; ++c) out[c] = MomentsOfTotals(totals[c]);
}

}  // namespace normd
