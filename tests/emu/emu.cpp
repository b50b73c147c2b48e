// emu.cpp: the emulator of emu.h: launches, block and warp collectives,
// shared memory, ldmatrix and mma.sync, and the host functions of the cuda
// backend that the kernel files call (cuda_backend.c is not linked).
#include "emu.h"

#include "fibers.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 gridDim, blockDim;

namespace {

constexpr size_t DEFAULT_SMEM = 48 * 1024, MAX_SMEM = 227 * 1024; // per block, H100
int errors = 0;
std::vector<std::string> launched; // nc_cuda_launched names, in order
int smem_optin = 0;                // the largest cudaFuncSetAttribute limit so far
bool descending = false;           // the order threads run in (emu_set_order)

void error(const char *fmt, ...) {
    errors++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (block %u,%u,%u thread %u)\n", blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x);
    va_end(ap);
}

constexpr uint64_t NEVER = ~0ull;

struct Warp {
    explicit Warp(int lanes) : lanes(lanes) {
        for (auto &s : stamp)
            for (auto &x : s) x = NEVER;
    }
    int lanes;
    unsigned char slot[2][32][32]; // (parity, lane, bytes): double-buffered, one barrier per operation
    uint64_t stamp[2][32];         // the operation count each lane last contributed to
};

// One block's state; warps and warp_ops stay empty when the kernel runs thread by thread.
struct Block {
    bool collective = false;
    std::vector<std::unique_ptr<Warp>> warps;
    std::vector<uint64_t> warp_ops; // (threads) each thread's warp operations so far
    unsigned char *dyn = nullptr;   // (smem) bytes
    size_t dyn_bytes = 0;
    std::map<int, std::pair<void *, size_t>> statics; // site -> (array, bytes)
    ~Block() {
        free(dyn);
        for (auto &s : statics) free(s.second.first);
    }
};

Block *block_now;

void *poisoned(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    memset(p, 0xff, bytes); // NaN as f32, f64 and bf16
    return p;
}

std::unique_ptr<Block> new_block(unsigned threads, size_t smem, bool collective) {
    auto b = std::make_unique<Block>();
    if (collective) {
        b->collective = true;
        b->warp_ops.assign(threads, 0);
        for (unsigned w = 0; w * 32 < threads; w++) b->warps.push_back(std::make_unique<Warp>(min(32u, threads - 32 * w)));
    }
    b->dyn = smem ? static_cast<unsigned char *>(poisoned(smem)) : nullptr;
    b->dyn_bytes = smem;
    return b;
}

uint3 block_index(uint64_t b) {
    return {(unsigned)(b % gridDim.x), (unsigned)(b / gridDim.x % gridDim.y), (unsigned)(b / gridDim.x / gridDim.y)};
}

bool launch_ok(const char *name, dim3 g, dim3 b, size_t smem) {
    size_t limit = max(DEFAULT_SMEM, (size_t)smem_optin);
    if (b.x < 1 || b.x > 1024 || b.y != 1 || b.z != 1)
        error("%s: block (%u, %u, %u): 1 to 1024 threads in x only", name, b.x, b.y, b.z);
    else if (g.x < 1 || g.x > 0x7fffffffu || g.y < 1 || g.y > 65535 || g.z < 1 || g.z > 65535)
        error("%s: grid (%u, %u, %u) out of range", name, g.x, g.y, g.z);
    else if (smem > limit || smem > MAX_SMEM)
        error("%s: %zu bytes of dynamic shared memory, the limit is %zu", name, smem, min(limit, MAX_SMEM));
    else
        return true;
    return false;
}

// The block's threads: as fibers when the kernel has collectives, else one after another.
void run_threads(unsigned threads, bool collective, const std::function<void()> &kernel) {
    if (collective) {
        if (emu::fibers::run_block(threads, descending, kernel)) return;
        error("deadlock: the block's live threads wait at barriers that cannot release (a __syncthreads or a "
              "warp operation that some threads skip)");
        abort();
    }
    for (unsigned i = 0; i < threads; i++) {
        threadIdx = {emu::fibers::nth_thread(i, threads, descending), 0, 0};
        kernel();
    }
}

Block &collective_block(const char *what) {
    if (!block_now->collective) {
        error("%s in a kernel extract.py found collective-free: fix its call graph scan", what);
        abort();
    }
    return *block_now;
}

void check_smem(const unsigned char *p, size_t bytes, const char *what) {
    Block &b = *block_now;
    if (p < b.dyn || p + bytes > b.dyn + b.dyn_bytes)
        error("%s: [%p, +%zu) is outside the block's %zu bytes of dynamic shared memory", what, (const void *)p,
              bytes, b.dyn_bytes);
}

} // namespace

// ---- device side -----------------------------------------------------------------------

const unsigned char *emu::warp_exchange(const void *mine, size_t bytes) {
    Block &b = collective_block("a warp operation");
    Warp &w = *b.warps[threadIdx.x / 32];
    unsigned lane = threadIdx.x & 31;
    uint64_t op = b.warp_ops[threadIdx.x]++;
    int parity = (int)(op & 1);
    if (bytes) memcpy(w.slot[parity][lane], mine, bytes);
    w.stamp[parity][lane] = op;
    emu::fibers::arrive_and_wait(emu::fibers::Barrier::warp);
    for (int l = 0; l < 32; l++)
        if (l >= w.lanes || w.stamp[parity][l] != op) {
            error("a full-mask warp operation without lane %d (exited or elsewhere)", l);
            break;
        }
    return &w.slot[parity][0][0];
}

void *emu::dynamic_smem() { return block_now->dyn; }

void *emu::static_smem(int site, size_t bytes) {
    Block &b = *block_now;
    auto it = b.statics.find(site);
    if (it == b.statics.end()) it = b.statics.emplace(site, std::make_pair(poisoned(bytes), bytes)).first;
    if (it->second.second != bytes) error("two __shared__ arrays of different sizes at site %d", site);
    return it->second.first;
}

void emu::launch(const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t, bool collective,
                 const std::function<void()> &kernel) {
    if (!launch_ok(name, grid, block, smem)) return;
    gridDim = grid;
    blockDim = block;
    for (uint64_t b = 0; b < (uint64_t)grid.x * grid.y * grid.z; b++) {
        std::unique_ptr<Block> state = new_block(block.x, smem, collective);
        block_now = state.get();
        blockIdx = block_index(b);
        run_threads(block.x, collective, kernel);
    }
    block_now = nullptr;
}

void __syncthreads() {
    collective_block("__syncthreads");
    emu::fibers::arrive_and_wait(emu::fibers::Barrier::block);
}

void emu_check_full_mask(unsigned mask, const char *what) {
    if (mask != 0xffffffffu) error("%s with mask %#x: only the full mask is emulated", what, mask);
}

void __syncwarp(unsigned mask) {
    emu_check_full_mask(mask, "__syncwarp");
    emu::warp_exchange(nullptr, 0);
}

size_t __cvta_generic_to_shared(const void *p) {
    check_smem(static_cast<const unsigned char *>(p), 1, "__cvta_generic_to_shared");
    return (size_t)(static_cast<const unsigned char *>(p) - block_now->dyn);
}

// ---- ldmatrix, mma.sync (PTX ISA fragment layouts) -------------------------------------------

namespace {

uint16_t bf16_bits_at(uint32_t row_addr, int element) {
    uint16_t v;
    memcpy(&v, block_now->dyn + row_addr + 2 * element, sizeof v);
    return v;
}

// .x4: lanes 8i..8i+7 give the 8 row addresses of matrix i, whose fragment
// lands in r[i]. Plain: lane l holds row l/4, columns 2(l%4) and 2(l%4)+1.
// .trans: lane l holds column l/4 of rows 2(l%4) and 2(l%4)+1.
void ldmatrix_x4(uint32_t *r[4], uint32_t addr, bool trans) {
    check_smem(block_now->dyn + addr, 16, "ldmatrix row");
    if (addr % 16) error("ldmatrix: row address %u is not 16-byte aligned", addr);
    const unsigned char *all = emu::warp_exchange(&addr, sizeof addr);
    unsigned l = threadIdx.x & 31;
    auto row = [&](unsigned lane) {
        uint32_t a;
        memcpy(&a, all + 32 * lane, sizeof a);
        return a;
    };
    for (unsigned i = 0; i < 4; i++) {
        uint16_t lo, hi;
        if (trans) {
            lo = bf16_bits_at(row(8 * i + 2 * (l % 4)), (int)(l / 4));
            hi = bf16_bits_at(row(8 * i + 2 * (l % 4) + 1), (int)(l / 4));
        } else {
            lo = bf16_bits_at(row(8 * i + l / 4), (int)(2 * (l % 4)));
            hi = bf16_bits_at(row(8 * i + l / 4), (int)(2 * (l % 4) + 1));
        }
        *r[i] = (uint32_t)lo | (uint32_t)hi << 16;
    }
}

float bf16_half(uint32_t reg, int k) {
    uint32_t bits = (k & 1 ? reg >> 16 : reg & 0xffffu) << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

} // namespace

void emu_ldmatrix_x4(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t addr) {
    uint32_t *r[4] = {&r0, &r1, &r2, &r3};
    ldmatrix_x4(r, addr, false);
}

void emu_ldmatrix_x4_trans(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t addr) {
    uint32_t *r[4] = {&r0, &r1, &r2, &r3};
    ldmatrix_x4(r, addr, true);
}

// m16n8k16, A row-major (16 x 16), B column-major (16 x 8), f32 C. Lane l, g =
// l/4, t = l%4, holds A (g + 8(j&1), 2t + 8(j>>1) + {0,1}) in a[j], B (2t + 8j +
// {0,1}, g) in b[j], C (g + 8(e>>1), 2t + (e&1)) in c[e].
void emu_mma_m16n8k16_bf16(float &c0, float &c1, float &c2, float &c3, uint32_t a0, uint32_t a1, uint32_t a2,
                           uint32_t a3, uint32_t b0, uint32_t b1) {
    uint32_t mine[6] = {a0, a1, a2, a3, b0, b1}; // (a[4], b[2])
    const unsigned char *all = emu::warp_exchange(mine, sizeof mine);
    auto reg = [&](unsigned lane, int j) {
        uint32_t v;
        memcpy(&v, all + 32 * lane + 4 * j, sizeof v);
        return v;
    };
    unsigned l = threadIdx.x & 31;
    float *c[4] = {&c0, &c1, &c2, &c3};
    for (int e = 0; e < 4; e++) {
        unsigned row = l / 4 + 8 * (e >> 1), col = 2 * (l % 4) + (e & 1);
        double s = *c[e];
        for (int k = 0; k < 16; k++) {
            float a = bf16_half(reg((row % 8) * 4 + (k % 8) / 2, (int)(row / 8) + 2 * (k / 8)), k);
            float b = bf16_half(reg(col * 4 + (k % 8) / 2, 4 + k / 8), k);
            s += (double)a * b;
        }
        *c[e] = (float)s;
    }
}

// ---- host side: the runtime calls and the cuda backend's helpers -----------------------------

extern "C" {

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind, cudaStream_t) {
    memmove(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *, enum cudaFuncAttribute attr, int value) {
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) smem_optin = max(smem_optin, value);
    return cudaSuccess;
}

nc_backend *emu_backend(void) {
    static nc_cuda device;
    static nc_backend be;
    if (!be.impl) {
        device.sms = 132;
        be.name = "cuda";
        strcpy(be.device, "emulated");
        be.gpu = true;
        be.act = NC_BF16;
        be.threads = 1;
        be.ops = &emu_ops;
        be.impl = &device;
    }
    return &be;
}

int emu_errors(void) { return errors; }

void emu_set_order(bool descending_order) { descending = descending_order; }

uint16_t emu_to_bf16(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }

float emu_from_bf16(uint16_t bits) { return __bfloat162float(__ushort_as_bfloat16(bits)); }

int emu_launches(const char *part) {
    int n = 0;
    for (const std::string &s : launched) n += s.find(part) != std::string::npos;
    return n;
}

bool nc_cuda_ok(nc_backend *, cudaError_t e, const char *what) {
    if (e != cudaSuccess) error("%s: cuda error %d", what, (int)e);
    return e == cudaSuccess;
}

void nc_cuda_fail(nc_backend *, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error("nc_cuda_fail: %s", msg);
}

void nc_cuda_launched(nc_backend *, const char *kernel) { launched.push_back(kernel); }

// Exactly `bytes`, NaN-poisoned, fresh on every call (the real buffer keeps
// old contents, which no op may rely on); ops run synchronously here, so the
// previous one is no longer in use.
void *nc_cuda_scratch(nc_backend *, size_t bytes) {
    static void *scratch;
    free(scratch);
    return scratch = poisoned(bytes);
}

} // extern "C"
