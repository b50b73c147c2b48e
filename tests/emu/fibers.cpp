// fibers.cpp: the block scheduler of fibers.h, one stack per thread index,
// switched by a few instructions of assembly on x86-64 (ucontext elsewhere:
// swapcontext saves the signal mask with a system call on every switch, and
// the emulated kernels switch at every warp operation).
#include "fibers.h"

#include "emu.h"

#include <sys/mman.h>
#include <unistd.h>
#if !defined(__x86_64__) || defined(__CET__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// Kernels keep large local arrays (the attention backward at D 128: tens of
// KB); untouched pages cost nothing (MAP_NORESERVE).
constexpr size_t STACK_BYTES = 1 << 20;

#if defined(__x86_64__) && !defined(__CET__)
// A context is a stack pointer: a switch pushes the callee-saved registers
// (SysV) and its return address on the stack it leaves, stores the stack
// pointer, loads the other's and pops them there. The floating-point control
// state (MXCSR, the x87 control word) is not switched: no kernel changes it.
// (Shadow stacks, CET, would refuse the switch's ret: such builds take ucontext.)
struct Context {
    void *sp;
};
extern "C" void emu_switch_stack(void **save_sp, void *load_sp);
asm(R"(
    .text
    .p2align 4
    .globl emu_switch_stack
    .type emu_switch_stack, @function
emu_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch_stack, .-emu_switch_stack
    .section .note.GNU-stack,"",@progbits
    .text
)");

void switch_context(Context &from, Context &to) { emu_switch_stack(&from.sp, to.sp); }

// A context that enters `entry` (which never returns) on the stack below `top` (16-byte aligned).
void make_context(Context &c, char *top, void (*entry)()) {
    void **sp = reinterpret_cast<void **>(top);
    *--sp = nullptr;                         // entry's return address: none
    *--sp = reinterpret_cast<void *>(entry); // where the first switch returns to
    for (int i = 0; i < 6; i++) *--sp = nullptr; // the callee-saved registers it pops
    c.sp = sp;
}
#else
struct Context {
    ucontext_t uc;
};

void switch_context(Context &from, Context &to) { swapcontext(&from.uc, &to.uc); }

void make_context(Context &c, char *top, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack = {top - STACK_BYTES, 0, STACK_BYTES};
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif

enum class State { runnable, at_block, at_warp, returned };

struct Fiber {
    Context context;
    State state;
};

struct Schedule {
    Context scheduler;
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

// A fiber's life: the thread, then back to the scheduler for good.
[[noreturn]] void fiber_main() {
    (*now->thread)();
    Fiber &f = now->fibers[now->running];
    f.state = State::returned;
    switch_context(f.context, now->scheduler);
    abort(); // a returned fiber is never resumed
}

void start(Schedule &s, unsigned t) {
    Fiber &f = s.fibers[t];
    make_context(f.context, stack(t) + STACK_BYTES, fiber_main);
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
    switch_context(s.scheduler, s.fibers[t].context);
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
    switch_context(f.context, now->scheduler);
}
