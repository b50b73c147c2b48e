// fibers.h: the CUDA threads of one block as fibers on the calling thread,
// scheduled deterministically: always the first runnable fiber in a fixed
// order (ascending or descending thread index) runs, until it arrives at a
// barrier or returns; a barrier releases once every live member arrived. So
// a warp's lanes run in step, one after another from one warp operation to
// the next, and a warp runs to the next __syncthreads before the next warp
// starts. A thread that returns drops out of its block and its warp, as on
// sm_70 and later. threadIdx follows the running fiber.
#ifndef NC_EMU_FIBERS_H
#define NC_EMU_FIBERS_H

#include <functional>

namespace emu::fibers {

enum class Barrier { block, warp };

// The thread that runs i-th of `threads` in the given order.
inline unsigned nth_thread(unsigned i, unsigned threads, bool descending) {
    return descending ? threads - 1 - i : i;
}

// Runs `thread` as each of `threads` fibers until all returned; false (the
// fibers left stuck) when live threads wait at barriers that cannot release.
bool run_block(unsigned threads, bool descending, const std::function<void()> &thread);

// From a fiber: waits until every live thread of the block, or of the
// caller's warp, has arrived at such a barrier.
void arrive_and_wait(Barrier at);

} // namespace emu::fibers

#endif
