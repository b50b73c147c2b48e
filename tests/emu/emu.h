/* emu.h: a CPU emulator of the little of CUDA the kernels use, so that the
 * project's own kernel code (the backend/cuda .cu files, rewritten by extract.py) runs in CI
 * without a GPU. C sees the part a test needs; C++ (the generated kernels) the
 * device side: threadIdx and friends, __syncthreads, warp shuffles, shared
 * memory, ldmatrix and mma.sync, and launches.
 *
 * How it runs: a launch runs its blocks one after another, on the calling
 * thread, and a block's threads in a fixed order: ascending thread index, or
 * descending (emu_set_order; emu_check.h reruns every case so). A kernel that
 * reaches a collective (extract.py decides, the emulator enforces) runs them
 * as fibers (fibers.h): a warp's lanes in step from one warp operation to the
 * next, and each warp up to the next __syncthreads before the next warp
 * starts. __syncthreads is a barrier of the block and warp operations a
 * barrier of the warp; a thread that returns drops out of both, as on sm_70
 * and later. Other kernels run thread by thread. Shared memory is exactly
 * the launch's size, fresh for every block and filled with NaN. ldmatrix and
 * mma.sync follow the PTX ISA's fragment layouts (mma sums in double, then
 * rounds once).
 *
 * Limits, so that nobody reads more into a pass than it says:
 * - blocks never run at the same time: races between blocks (and missing
 *   atomics) are invisible; only races inside a block can show;
 * - math is the host's libm and the compiler's contraction, not CUDA's
 *   (expf, exp2f, tanhf differ in the last ulps; no fast-math intrinsics);
 * - no memory model, and two schedules only: a missing __syncthreads shows
 *   where a thread reads shared memory that another warp writes between the
 *   same two __syncthreads, since one order runs the reader's warp first and
 *   the other last (NaN or a stale value, or other bits in the rerun); so
 *   does a read of what another lane of the same warp writes with no warp
 *   operation between. It stays hidden where a warp operation separates them
 *   (correct after __syncwarp, a race after a mere shuffle on sm_70 and
 *   later), and where the value read is the same either way (data that does
 *   not change, a NaN that fmaxf drops);
 * - one-dimensional blocks; shuffles and __syncwarp with the full mask only;
 * - "device" memory is host memory: nothing catches a host pointer handed to
 *   a kernel, and out-of-bounds reads show only under a sanitizer. */
#ifndef NC_EMU_H
#define NC_EMU_H

#ifdef __cplusplus
#include <atomic> /* nc.h's C11 atomics are std's in C++ (as in common.cuh) */
using std::atomic_bool;
using std::atomic_uint_fast64_t;
#endif

#include "backend/cuda/internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The backend handle the nc_cuda_* wrappers get: an nc_cuda with the 132 SMs
 * of an H100 SXM (grid caps as on the real card), stream 0; its op table
 * (emu_backend.c) makes it a whole backend a model can run on. */
nc_backend *emu_backend(void);
extern const nc_backend_ops emu_ops;
/* Emulator errors so far (a bad launch, a lane missing from a shuffle, ...);
 * each is printed to stderr when it happens. */
int emu_errors(void);
/* bf16 bits from f32 and back, by the toolkit's own host conversions. */
uint16_t emu_to_bf16(float f);
float emu_from_bf16(uint16_t bits);
/* How many launches so far ran a kernel whose name contains `part`. */
int emu_launches(const char *part);
/* The order a block's threads run in: ascending thread index (the default)
 * or descending. */
void emu_set_order(bool descending);

#ifdef __cplusplus
}

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <math.h> /* what nvcc gives device code unasked: expf, sqrtf, isfinite, ... */

#ifndef __launch_bounds__
#define __launch_bounds__(...) /* a hint to the device compiler only */
#endif

using std::max;
using std::min;

extern uint3 threadIdx, blockIdx; /* the running thread's (fibers.h) */
extern dim3 gridDim, blockDim;

namespace emu {
/* Every lane of the warp puts `bytes` (<= 32) of `mine` in; the result holds
 * all 32 lanes' contributions, 32 bytes apart, until this lane's next warp
 * operation after the one that follows. */
const unsigned char *warp_exchange(const void *mine, size_t bytes);
void *dynamic_smem();
/* The block's __shared__ array declared at `site` (extract.py numbers every declaration), `bytes` long. */
void *static_smem(int site, size_t bytes);
template <class T>
T &shared(int site) {
    return *static_cast<T *>(static_smem(site, sizeof(T)));
}
void launch(const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool collective,
            const std::function<void()> &kernel);
} // namespace emu

void __syncthreads();
void __syncwarp(unsigned mask = 0xffffffffu);
void emu_check_full_mask(unsigned mask, const char *what);

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    static_assert(sizeof(T) <= 32, "a shuffle of more than 32 bytes");
    emu_check_full_mask(mask, "__shfl_xor_sync");
    const unsigned char *all = emu::warp_exchange(&v, sizeof v);
    T r;
    memcpy(&r, all + 32 * ((threadIdx.x & 31) ^ (unsigned)lane_mask), sizeof r);
    return r;
}

/* cuda_runtime.h's C++ overload, which it declares for nvcc only. */
template <class T>
cudaError_t cudaFuncSetAttribute(T *entry, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)entry, attr, value);
}

/* Shared-window addresses are offsets into the block's dynamic shared memory. */
size_t __cvta_generic_to_shared(const void *p);

// The PTX extract.py maps (backend/cuda/mma.cuh).
void emu_ldmatrix_x4(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t addr);
void emu_ldmatrix_x4_trans(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t addr);
void emu_mma_m16n8k16_bf16(float &c0, float &c1, float &c2, float &c3, uint32_t a0, uint32_t a1, uint32_t a2,
                           uint32_t a3, uint32_t b0, uint32_t b1);

#endif /* __cplusplus */
#endif
