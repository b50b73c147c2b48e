// fibers.cpp: the block scheduler of fibers.h, on ucontext (makecontext for a
// fiber's start, swapcontext to switch), one stack per thread index.
#include "fibers.h"

#include "emu.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// Kernels keep large local arrays (the attention backward at D 128: tens of
// KB); untouched pages cost nothing (MAP_NORESERVE).
constexpr size_t STACK_BYTES = 1 << 20;

enum class State { runnable, at_block, at_warp, returned };

struct Fiber {
    ucontext_t context;
    State state;
};

struct Schedule {
    ucontext_t scheduler;
    std::vector<Fiber> fibers; // (threads)
    const std::function<void()> *thread;
    unsigned running;
};

Schedule *now; // the block being run

// Thread t's stack, mapped on first use above a guard page and kept for reuse.
char *stack(unsigned t) {
    static std::vector<char *> stacks;
    static const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    while (stacks.size() <= t) {
        void *p = mmap(nullptr, page + STACK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (p == MAP_FAILED || mprotect(p, page, PROT_NONE) != 0) {
            perror("emu: a fiber stack");
            abort();
        }
        stacks.push_back(static_cast<char *>(p) + page);
    }
    return stacks[t];
}

void fiber_main() {
    (*now->thread)();
    now->fibers[now->running].state = State::returned;
} // uc_link: back to the scheduler

void start(Schedule &s, unsigned t) {
    Fiber &f = s.fibers[t];
    getcontext(&f.context);
    f.context.uc_stack = {stack(t), 0, STACK_BYTES};
    f.context.uc_link = &s.scheduler;
    makecontext(&f.context, fiber_main, 0);
    f.state = State::runnable;
}

// Sets runnable the live fibers of [first, last) if all wait in `state`.
bool release(Schedule &s, unsigned first, unsigned last, State state) {
    bool live = false;
    for (unsigned t = first; t < last; t++) {
        State at = s.fibers[t].state;
        if (at != State::returned && at != state) return false;
        live |= at == state;
    }
    for (unsigned t = first; t < last; t++)
        if (s.fibers[t].state == state) s.fibers[t].state = State::runnable;
    return live;
}

void resume(Schedule &s, unsigned t) {
    s.running = t;
    threadIdx = {t, 0, 0};
    swapcontext(&s.scheduler, &s.fibers[t].context);
}

// The warp of threads [first, first + lanes), in order, round after round,
// for as long as its barriers release.
void run_warp(Schedule &s, unsigned first, unsigned lanes, bool descending) {
    do {
        for (unsigned i = 0; i < lanes; i++) {
            unsigned t = first + emu::fibers::nth_thread(i, lanes, descending);
            if (s.fibers[t].state == State::runnable) resume(s, t);
        }
    } while (release(s, first, first + lanes, State::at_warp));
}

bool all_returned(const Schedule &s) {
    for (const Fiber &f : s.fibers)
        if (f.state != State::returned) return false;
    return true;
}

} // namespace

bool emu::fibers::run_block(unsigned threads, bool descending, const std::function<void()> &thread) {
    Schedule s;
    s.fibers.resize(threads);
    s.thread = &thread;
    for (unsigned t = 0; t < threads; t++) start(s, t);
    now = &s;
    unsigned warps = (threads + 31) / 32;
    do {
        for (unsigned i = 0; i < warps; i++) {
            unsigned w = emu::fibers::nth_thread(i, warps, descending);
            run_warp(s, 32 * w, std::min(32u, threads - 32 * w), descending);
        }
    } while (release(s, 0, threads, State::at_block));
    now = nullptr;
    return all_returned(s);
}

void emu::fibers::arrive_and_wait(Barrier at) {
    Fiber &f = now->fibers[now->running];
    f.state = at == Barrier::block ? State::at_block : State::at_warp;
    swapcontext(&f.context, &now->scheduler);
}
